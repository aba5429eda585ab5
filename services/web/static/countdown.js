// The order page's countdown: updates the time left to pay every second and,
// when it reaches zero, hides the payment forms and says the reservation
// expired. The page shows the time left without this script too.
(function () {
  'use strict';
  var box = document.querySelector('[data-countdown]');
  if (!box) return;
  var clock = box.querySelector('[data-countdown-clock]');
  var secondsLeft = Number(box.getAttribute('data-seconds-left'));
  if (!clock || !isFinite(secondsLeft)) return;
  // Counted from the server's figure, so a wrong clock on this device
  // does not change the time left.
  var end = Date.now() + secondsLeft * 1000;

  function pad(n) {
    return n < 10 ? '0' + n : String(n);
  }

  function format(total) {
    var h = Math.floor(total / 3600);
    var m = Math.floor((total % 3600) / 60);
    var s = total % 60;
    return h > 0 ? h + ':' + pad(m) + ':' + pad(s) : m + ':' + pad(s);
  }

  function expire() {
    box.hidden = true;
    var forms = document.querySelectorAll('[data-payment]');
    for (var i = 0; i < forms.length; i++) forms[i].hidden = true;
    var message = document.querySelector('[data-expired-message]');
    if (message) message.hidden = false;
    var status = document.querySelector('[data-status]');
    if (status) {
      status.textContent = 'Expired';
      status.className = 'badge badge-muted';
    }
  }

  function tick() {
    var left = Math.max(0, Math.ceil((end - Date.now()) / 1000));
    clock.textContent = format(left);
    if (left === 0) {
      expire();
      return;
    }
    window.setTimeout(tick, 250);
  }

  tick();
})();
