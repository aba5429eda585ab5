//! Dead letters as the operator sees them. The listener runtime
//! (`common::listener`) publishes an event it gave up on to
//! `deadletter.<service>.<subject>` in the `DEADLETTER` stream, with the
//! reason and the deliveries made; this crate lists them, shows one,
//! replays them onto their original subject and discards them.
//!
//! A replay is published under a new `Nats-Msg-Id`, so that JetStream's
//! duplicate window does not drop it as a copy of the original, and keeps
//! the event's own id in `Buytickets-Event-Id`, so that consumers which
//! de-duplicate by event id (their inbox) and those that compare versions
//! still apply it at most once. Every consumer of the subject receives the
//! replay; those that had applied the event already see a duplicate.

use std::time::Duration;

use anyhow::{Context as _, bail};
use async_nats::jetstream::stream::Stream as JsStream;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use common::bus::Bus;
use common::events::Stream;
use common::listener::{
    DEAD_LETTER_ATTEMPTS, DEAD_LETTER_REASON, EVENT_ID, ORIGINAL_MSG_ID, ORIGINAL_SUBJECT,
};
use uuid::Uuid;

/// One dead letter, as stored in the `DEADLETTER` stream.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its sequence in the stream: how the operator names it.
    pub sequence: u64,
    /// The service whose consumer gave up on it.
    pub service: String,
    /// The subject it was published on (without the deployment prefix).
    pub subject: String,
    /// Why it was dead-lettered.
    pub reason: String,
    /// Deliveries made before giving up (unknown for letters written
    /// before the count was recorded).
    pub attempts: Option<u64>,
    /// The event's id, when it had one.
    pub event_id: Option<Uuid>,
    /// When it was dead-lettered.
    pub stored_at: DateTime<Utc>,
    /// The event's payload, as it was.
    pub payload: Bytes,
}

impl DeadLetter {
    /// How long ago it was dead-lettered.
    pub fn age(&self, now: DateTime<Utc>) -> Duration {
        (now - self.stored_at).to_std().unwrap_or_default()
    }
}

/// Which dead letters an operation concerns.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only those of this original subject (e.g. `ticket.updated`).
    pub subject: Option<String>,
    /// Only those this service gave up on.
    pub service: Option<String>,
}

impl Filter {
    fn matches(&self, letter: &DeadLetter) -> bool {
        self.subject.as_ref().is_none_or(|s| *s == letter.subject)
            && self.service.as_ref().is_none_or(|s| *s == letter.service)
    }
}

/// The dead letters of one deployment (its NATS prefix).
pub struct DeadLetters {
    bus: Bus,
    stream: JsStream,
}

impl DeadLetters {
    /// Opens the dead-letter stream of `bus`'s deployment. It leaves the
    /// streams' configuration alone (the services own it), and fails when
    /// the stream does not exist: no service ran on that deployment yet.
    pub async fn open(bus: Bus) -> anyhow::Result<DeadLetters> {
        let name = bus.name(Stream::DeadLetter.name());
        let stream = bus
            .jetstream()
            .get_stream(&name)
            .await
            .with_context(|| format!("opening the dead-letter stream {name}"))?;
        Ok(DeadLetters { bus, stream })
    }

    /// Every dead letter matching `filter`, oldest first.
    pub async fn list(&self, filter: &Filter) -> anyhow::Result<Vec<DeadLetter>> {
        let mut stream = self.stream.clone();
        let state = stream
            .info()
            .await
            .context("reading the dead-letter stream")?
            .state
            .clone();
        let mut letters = Vec::new();
        let mut seen = 0;
        for sequence in state.first_sequence..=state.last_sequence {
            if seen >= state.messages {
                break;
            }
            // Discarded letters leave gaps in the sequence.
            let Some(letter) = self.find(sequence).await? else {
                continue;
            };
            seen += 1;
            if filter.matches(&letter) {
                letters.push(letter);
            }
        }
        Ok(letters)
    }

    /// The dead letter at `sequence`; an error when there is none.
    pub async fn get(&self, sequence: u64) -> anyhow::Result<DeadLetter> {
        self.find(sequence)
            .await?
            .with_context(|| format!("no dead letter #{sequence}"))
    }

    async fn find(&self, sequence: u64) -> anyhow::Result<Option<DeadLetter>> {
        use async_nats::jetstream::stream::RawMessageErrorKind;
        let message = match self.stream.get_raw_message(sequence).await {
            Ok(message) => message,
            Err(e) if e.kind() == RawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(e) => {
                return Err(e).with_context(|| format!("reading dead letter #{sequence}"));
            }
        };
        let header = |name: &str| message.headers.get(name).map(|v| v.as_str().to_string());
        let full_subject = self.bus.unprefixed(message.subject.as_str());
        // deadletter.<service>.<subject>
        let (service, subject_from_name) = full_subject
            .strip_prefix("deadletter.")
            .and_then(|rest| rest.split_once('.'))
            .unwrap_or(("?", full_subject));
        let nanos = i64::try_from(message.time.unix_timestamp_nanos()).unwrap_or_default();
        Ok(Some(DeadLetter {
            sequence,
            service: service.to_string(),
            subject: header(ORIGINAL_SUBJECT).unwrap_or_else(|| subject_from_name.to_string()),
            reason: header(DEAD_LETTER_REASON).unwrap_or_default(),
            attempts: header(DEAD_LETTER_ATTEMPTS).and_then(|a| a.parse().ok()),
            event_id: header(ORIGINAL_MSG_ID).and_then(|id| Uuid::parse_str(&id).ok()),
            stored_at: DateTime::from_timestamp_nanos(nanos),
            payload: message.payload.clone(),
        }))
    }

    /// Publishes `letter`'s event again on its original subject, under a
    /// new message id and with its event id kept, waits for JetStream to
    /// store it, then removes the dead letter. Returns the new message id.
    pub async fn replay(&self, letter: &DeadLetter) -> anyhow::Result<Uuid> {
        if letter.subject.starts_with("deadletter.") || letter.subject.is_empty() {
            bail!("dead letter #{} names no original subject", letter.sequence);
        }
        let message_id = Uuid::now_v7();
        let event_id = letter.event_id.map(|id| id.to_string());
        let headers: Vec<(&str, &str)> = event_id
            .as_deref()
            .map(|id| vec![(EVENT_ID, id)])
            .unwrap_or_default();
        self.bus
            .publish(
                &letter.subject,
                message_id,
                letter.payload.clone(),
                &headers,
            )
            .await
            .with_context(|| format!("replaying dead letter #{}", letter.sequence))?;
        self.discard(letter.sequence).await?;
        Ok(message_id)
    }

    /// Removes the dead letter at `sequence` for good.
    pub async fn discard(&self, sequence: u64) -> anyhow::Result<()> {
        self.stream
            .delete_message(sequence)
            .await
            .with_context(|| format!("discarding dead letter #{sequence}"))?;
        Ok(())
    }
}

/// `age` in its two largest units, e.g. `3d 4h`, `12m 5s`, `9s`.
pub fn format_age(age: Duration) -> String {
    let s = age.as_secs();
    let (d, h, m, s) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_in_their_two_largest_units() {
        assert_eq!(format_age(Duration::from_secs(9)), "9s");
        assert_eq!(format_age(Duration::from_secs(725)), "12m 5s");
        assert_eq!(format_age(Duration::from_secs(3 * 3600 + 120)), "3h 2m");
        assert_eq!(format_age(Duration::from_secs(2 * 86_400 + 3600)), "2d 1h");
    }
}
