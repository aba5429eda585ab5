// Card payments with Stripe Elements: the card details go to Stripe only;
// Stripe answers with a token, which the form posts to us instead.
(function () {
  'use strict';
  var form = document.querySelector('form[data-stripe-key]');
  if (!form || typeof window.Stripe !== 'function') return;
  var stripe = window.Stripe(form.getAttribute('data-stripe-key'));
  var card = stripe.elements().create('card');
  card.mount('#card-element');
  var errors = document.getElementById('card-errors');
  var button = form.querySelector('button[type="submit"]');
  var busy = false;

  card.on('change', function (event) {
    errors.textContent = event.error ? event.error.message : '';
  });

  form.addEventListener('submit', function (event) {
    event.preventDefault();
    if (busy) return;
    busy = true;
    button.disabled = true;
    stripe.createToken(card).then(function (result) {
      if (result.error) {
        errors.textContent = result.error.message;
        busy = false;
        button.disabled = false;
        return;
      }
      form.querySelector('input[name="token"]').value = result.token.id;
      form.submit();
    });
  });
})();
