//! The seven mails: which kind, to whom, about what, and their plain-text
//! and HTML parts, rendered from the askama templates `mail.txt` and
//! `mail.html`. A mail is rendered once, when it is decided, and stored; the
//! sender only sends what is stored.

use anyhow::Context as _;
use askama::Template;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// What a mail is for. With the entity it is about and its recipient, the
/// kind is the mail's unique key: one mail per (kind, entity, recipient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailKind {
    /// To a new user, after sign-up (about the user).
    Welcome,
    /// To the buyer: the ticket is held for them until a time (about the order).
    ReservationConfirmed,
    /// To the buyer, shortly before an unpaid reservation runs out.
    Reminder,
    /// To the buyer: the receipt.
    PaymentReceived,
    /// To the buyer: the reservation ran out unpaid.
    ReservationExpired,
    /// To the buyer: a charge was given back (about the payment).
    RefundIssued,
    /// To the seller: the ticket sold (about the order).
    TicketSold,
}

impl MailKind {
    /// Every kind, in the order a purchase meets them.
    pub const ALL: [MailKind; 7] = [
        Self::Welcome,
        Self::ReservationConfirmed,
        Self::Reminder,
        Self::PaymentReceived,
        Self::ReservationExpired,
        Self::RefundIssued,
        Self::TicketSold,
    ];

    /// The name stored in the `mails` table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Welcome => "welcome",
            Self::ReservationConfirmed => "reservation_confirmed",
            Self::Reminder => "reminder",
            Self::PaymentReceived => "payment_received",
            Self::ReservationExpired => "reservation_expired",
            Self::RefundIssued => "refund_issued",
            Self::TicketSold => "ticket_sold",
        }
    }
}

/// A mail, rendered and addressed, not yet sent.
#[derive(Debug, Clone)]
pub struct Mail {
    pub kind: MailKind,
    /// The user, order or payment the mail is about.
    pub subject_id: Uuid,
    pub recipient: String,
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// What the templates show. Fields a kind does not use are empty.
#[derive(Debug, Clone, Default)]
pub(crate) struct Facts {
    /// The page the mail's button leads to (absolute).
    pub(crate) link: String,
    /// The ticket's title.
    pub(crate) title: String,
    /// An amount of money, as `$15.50`.
    pub(crate) amount: String,
    /// When the reservation runs out, as `2026-12-01 11:30 UTC`.
    pub(crate) expires_at: String,
    /// The order's id.
    pub(crate) order: String,
    /// Why a refund was made.
    pub(crate) reason: String,
}

impl Facts {
    /// The facts of a mail about order `id` for the ticket `title` at
    /// `price` cents, held until `expires_at`, leading to `link`.
    pub(crate) fn order(
        id: Uuid,
        title: &str,
        price: i64,
        expires_at: DateTime<Utc>,
        link: String,
    ) -> Facts {
        Facts {
            link,
            title: title.to_string(),
            amount: dollars(price),
            expires_at: when(expires_at),
            order: id.to_string(),
            reason: String::new(),
        }
    }
}

#[derive(Template)]
#[template(path = "mail.txt")]
struct TextPart<'a> {
    kind: &'a str,
    f: &'a Facts,
}

#[derive(Template)]
#[template(path = "mail.html")]
struct HtmlPart<'a> {
    kind: &'a str,
    subject: &'a str,
    f: &'a Facts,
}

/// Renders the mail of `kind` about `subject_id` for `recipient`.
pub(crate) fn render(
    kind: MailKind,
    subject_id: Uuid,
    recipient: &str,
    facts: &Facts,
) -> anyhow::Result<Mail> {
    let subject = match kind {
        MailKind::Welcome => "Welcome to buytickets".to_string(),
        MailKind::ReservationConfirmed => format!("Reservation confirmed: {}", facts.title),
        MailKind::Reminder => format!("Your reservation of {} runs out soon", facts.title),
        MailKind::PaymentReceived => format!("Payment received: {}", facts.title),
        MailKind::ReservationExpired => format!("Reservation expired: {}", facts.title),
        MailKind::RefundIssued => format!("Refund issued: {}", facts.amount),
        MailKind::TicketSold => format!("Your ticket sold: {}", facts.title),
    };
    let text = TextPart {
        kind: kind.as_str(),
        f: facts,
    }
    .render()
    .context("rendering a mail's text")?;
    let html = HtmlPart {
        kind: kind.as_str(),
        subject: &subject,
        f: facts,
    }
    .render()
    .context("rendering a mail's HTML")?;
    Ok(Mail {
        kind,
        subject_id,
        recipient: recipient.to_string(),
        subject,
        text,
        html,
    })
}

/// An amount in cents as dollars: `$15.50`.
pub(crate) fn dollars(cents: i64) -> String {
    format!("${}.{:02}", cents / 100, cents.rem_euclid(100))
}

/// A time as the mails show it: `2026-12-01 11:30 UTC`.
pub(crate) fn when(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> Facts {
        Facts {
            link: "https://buytickets.dev/orders/1".into(),
            title: "Concert <live>".into(),
            amount: dollars(1550),
            expires_at: "2026-12-01 11:30 UTC".into(),
            order: "1".into(),
            reason: "it arrived after the reservation ended".into(),
        }
    }

    #[test]
    fn every_kind_has_both_parts_with_the_link_and_its_own_subject() {
        let mut subjects = std::collections::HashSet::new();
        for kind in MailKind::ALL {
            let mail = render(kind, Uuid::nil(), "a@b.com", &facts()).expect("render");
            assert!(
                mail.text.contains("https://buytickets.dev/orders/1"),
                "{kind:?} text"
            );
            assert!(
                mail.html
                    .contains("href=\"https://buytickets.dev/orders/1\""),
                "{kind:?} html"
            );
            assert!(
                subjects.insert(mail.subject.clone()),
                "{kind:?} subject is its own"
            );
        }
    }

    #[test]
    fn html_escapes_what_users_wrote_and_text_keeps_it() {
        let mail = render(
            MailKind::ReservationConfirmed,
            Uuid::nil(),
            "a@b.com",
            &facts(),
        )
        .expect("render");
        assert!(
            mail.html.contains("Concert &#60;live&#62;")
                || mail.html.contains("Concert &lt;live&gt;")
        );
        assert!(mail.text.contains("Concert <live>"));
    }

    #[test]
    fn amounts_show_two_decimals() {
        assert_eq!(dollars(1550), "$15.50");
        assert_eq!(dollars(7), "$0.07");
        assert_eq!(dollars(200_000), "$2000.00");
    }
}
