//! Stripe's webhook signatures. The `Stripe-Signature` header is
//! `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">` (Stripe may
//! send several `v1` during a secret rotation, and other schemes we ignore).
//! A request is genuine when one `v1` matches under our endpoint secret, and
//! fresh when `t` is within [`TOLERANCE_SECONDS`] of now, which bounds
//! replays of a captured request.
//!
//! Written out rather than taken from async-stripe-webhook, whose check is
//! bound to parsing the whole event into its generated types: an event
//! from a newer API version must not fail its signature check.

use hmac::{Hmac, Mac};
use sha2_legacy::Sha256;

/// How far the signed timestamp may be from now, as Stripe's own libraries
/// allow.
pub(crate) const TOLERANCE_SECONDS: i64 = 300;

/// Why a webhook request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SignatureError {
    Missing,
    Malformed,
    Mismatch,
    Stale,
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl SignatureError {
    /// The message for the error body.
    pub(crate) fn message(self) -> &'static str {
        match self {
            Self::Missing => "Missing Stripe-Signature header",
            Self::Malformed => "Malformed Stripe-Signature header",
            Self::Mismatch => "Invalid webhook signature",
            Self::Stale => "Webhook timestamp is outside the tolerance",
        }
    }
}

/// Checks `header` against the raw `payload` with `secret`, at `now` (unix
/// seconds). The signature is compared in constant time.
pub(crate) fn verify(
    header: Option<&str>,
    payload: &[u8],
    secret: &str,
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed)?;
        match key {
            "t" => {
                timestamp = Some(
                    value
                        .parse::<i64>()
                        .map_err(|_| SignatureError::Malformed)?,
                )
            }
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| SignatureError::Mismatch)?;
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    let genuine = signatures.iter().any(|candidate| {
        hex::decode(candidate).is_ok_and(|bytes| mac.clone().verify_slice(&bytes).is_ok())
    });
    if !genuine {
        return Err(SignatureError::Mismatch);
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use stripe_webhook::Webhook;

    const SECRET: &str = "whsec_test_secret";
    const NOW: i64 = 1_760_000_000;
    const PAYLOAD: &str = r#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    fn sign(payload: &[u8], secret: &str, timestamp: i64) -> String {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(format!("{timestamp}.").as_bytes());
        mac.update(payload);
        format!(
            "t={timestamp},v1={}",
            hex::encode(mac.finalize().into_bytes())
        )
    }

    #[test]
    fn a_header_signed_by_stripes_library_is_genuine() {
        let header = Webhook::generate_test_header(PAYLOAD, SECRET, Some(NOW));
        assert_eq!(
            verify(Some(&header), PAYLOAD.as_bytes(), SECRET, NOW),
            Ok(())
        );
        assert_eq!(sign(PAYLOAD.as_bytes(), SECRET, NOW), header);
    }

    #[test]
    fn another_secret_or_another_body_does_not_match() {
        let header = sign(PAYLOAD.as_bytes(), SECRET, NOW);
        assert_eq!(
            verify(Some(&header), PAYLOAD.as_bytes(), "whsec_other", NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(Some(&header), b"{}", SECRET, NOW),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_matching_v1_among_several_is_enough() {
        let good = sign(PAYLOAD.as_bytes(), SECRET, NOW);
        let v1 = good.split_once(",v1=").map(|(_, v)| v).unwrap_or_default();
        let header = format!("t={NOW},v1={},v0=abc,v1={v1}", "0".repeat(64));
        assert_eq!(
            verify(Some(&header), PAYLOAD.as_bytes(), SECRET, NOW),
            Ok(())
        );
    }

    #[test]
    fn a_timestamp_beyond_the_tolerance_is_stale_either_way() {
        let header = sign(PAYLOAD.as_bytes(), SECRET, NOW);
        let body = PAYLOAD.as_bytes();
        assert_eq!(
            verify(Some(&header), body, SECRET, NOW + TOLERANCE_SECONDS),
            Ok(())
        );
        assert_eq!(
            verify(Some(&header), body, SECRET, NOW + TOLERANCE_SECONDS + 1),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(Some(&header), body, SECRET, NOW - TOLERANCE_SECONDS - 1),
            Err(SignatureError::Stale)
        );
    }

    #[test]
    fn missing_and_malformed_headers_are_refused() {
        let body = PAYLOAD.as_bytes();
        assert_eq!(
            verify(None, body, SECRET, NOW),
            Err(SignatureError::Missing)
        );
        for bad in ["", "t=abc,v1=00", "v1=00", &format!("t={NOW}"), "garbage"] {
            assert_eq!(
                verify(Some(bad), body, SECRET, NOW),
                Err(SignatureError::Malformed),
                "{bad}"
            );
        }
    }
}
