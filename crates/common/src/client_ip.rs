//! Who is asking: the client's IP address, for rate limits and logs. It is
//! the TCP peer's address, unless the peer is one of the configured trusted
//! proxies (the ingress, the web client's pods); then the forwarded header
//! that proxy appends is read from the right, skipping trusted hops, and
//! the first address no trusted proxy vouches for is the client. Hops left
//! of it were written by the client and are never believed.
//!
//! The server must be served with `ConnectInfo<SocketAddr>` (as
//! [`crate::lifecycle::Lifecycle::serve`] does).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRef, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::config::{ConfigError, optional};
use crate::error::ApiError;

/// Which forwarded header the trusted proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, …` (ingress-nginx, most proxies).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

impl FromStr for ForwardedHeader {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            _ => Err("expected X-Forwarded-For or Forwarded".into()),
        }
    }
}

/// How the client's address is found. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ClientIpSettings {
    /// `TRUSTED_PROXIES`: comma-separated CIDRs (or single addresses) of
    /// the proxies whose forwarded header is believed. Default none: the
    /// peer address is always the client.
    pub trusted_proxies: Arc<Vec<IpNet>>,
    /// `CLIENT_IP_HEADER`: `X-Forwarded-For` (default) or `Forwarded`. Only
    /// the one header the proxies write is read: a proxy passes the other
    /// through as the client sent it.
    pub header: ForwardedHeader,
}

impl ClientIpSettings {
    /// Reads `TRUSTED_PROXIES` and `CLIENT_IP_HEADER`.
    pub fn from_env() -> Result<Self, ConfigError> {
        let proxies: String = optional("TRUSTED_PROXIES", String::new())?;
        Ok(Self {
            trusted_proxies: Arc::new(
                parse_networks(&proxies)
                    .map_err(|e| ConfigError::invalid("TRUSTED_PROXIES", &proxies, e))?,
            ),
            header: optional("CLIENT_IP_HEADER", ForwardedHeader::default())?,
        })
    }

    /// Settings trusting `proxies` (CIDRs or addresses, comma-separated).
    pub fn trusting(proxies: &str) -> Result<Self, String> {
        Ok(Self {
            trusted_proxies: Arc::new(parse_networks(proxies)?),
            header: ForwardedHeader::default(),
        })
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|net| net.contains(&ip))
    }

    /// The client's address for a request from `peer` with `headers`.
    pub fn resolve(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let hops = match self.header {
            ForwardedHeader::XForwardedFor => x_forwarded_for(headers),
            ForwardedHeader::Forwarded => forwarded(headers),
        };
        for hop in hops.iter().rev() {
            match hop {
                // An address the proxies cannot vouch for ends the walk:
                // the last one they did is the best there is.
                None => break,
                Some(ip) => {
                    client = ip.to_canonical();
                    if !self.trusts(client) {
                        break;
                    }
                }
            }
        }
        client
    }
}

/// Comma-separated CIDRs; a bare address is a network of one.
fn parse_networks(list: &str) -> Result<Vec<IpNet>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<IpNet>()
                .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("{s:?} is not a CIDR or an IP address"))
        })
        .collect()
}

/// Every `X-Forwarded-For` hop, left to right, over all header lines.
fn x_forwarded_for(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("x-forwarded-for")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("garbage").split(','))
        .map(|hop| parse_node(hop.trim()))
        .collect()
}

/// The `for=` of every `Forwarded` element, left to right.
fn forwarded(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    headers
        .get_all("forwarded")
        .iter()
        .flat_map(|v| v.to_str().unwrap_or("for=garbage").split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, node)| parse_node(node.trim().trim_matches('"')))
        })
        .collect()
}

/// An address with or without a port (`1.2.3.4`, `1.2.3.4:80`, `::1`,
/// `[::1]:80`); obfuscated names (`unknown`, `_hidden`) are `None`.
fn parse_node(node: &str) -> Option<IpAddr> {
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            node.strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .and_then(|inner| inner.parse().ok())
        })
}

/// The client's IP address (see the module). Needs `ClientIpSettings` in
/// the state and `ConnectInfo<SocketAddr>` from the server; without the
/// latter the request fails as an internal error, since no limit keyed by
/// the client could hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S> FromRequestParts<S> for ClientIp
where
    ClientIpSettings: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let settings = ClientIpSettings::from_ref(state);
        let ConnectInfo(peer) = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .copied()
            .ok_or_else(|| {
                ApiError::Internal(anyhow::anyhow!(
                    "the server is not serving ConnectInfo<SocketAddr>"
                ))
            })?;
        Ok(ClientIp(settings.resolve(peer.ip(), &parts.headers)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    fn headers(name: &'static str, value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(name, HeaderValue::from_str(value).expect("value"));
        headers
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let settings = ClientIpSettings::trusting("10.0.0.0/8").expect("cidr");
        let forged = headers("x-forwarded-for", "1.2.3.4");
        assert_eq!(
            settings.resolve(ip("203.0.113.9"), &forged),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn nothing_is_trusted_by_default() {
        let settings = ClientIpSettings::default();
        let forged = headers("x-forwarded-for", "1.2.3.4");
        assert_eq!(settings.resolve(ip("10.0.0.1"), &forged), ip("10.0.0.1"));
    }

    #[test]
    fn a_trusted_peer_s_header_is_read_from_the_right_past_trusted_hops() {
        let settings = ClientIpSettings::trusting("10.0.0.0/8, 192.168.1.1").expect("cidr");
        // The client forged the first hop; the ingress appended the real one,
        // the web pod appended the ingress.
        let chain = headers("x-forwarded-for", "1.2.3.4, 198.51.100.7, 192.168.1.1");
        assert_eq!(settings.resolve(ip("10.1.2.3"), &chain), ip("198.51.100.7"));
    }

    #[test]
    fn a_trusted_peer_without_a_header_is_the_client() {
        let settings = ClientIpSettings::trusting("10.0.0.0/8").expect("cidr");
        assert_eq!(
            settings.resolve(ip("10.1.2.3"), &HeaderMap::new()),
            ip("10.1.2.3")
        );
    }

    #[test]
    fn the_forwarded_header_is_read_when_configured() {
        let settings = ClientIpSettings {
            header: ForwardedHeader::Forwarded,
            ..ClientIpSettings::trusting("10.0.0.0/8").expect("cidr")
        };
        let chain = headers(
            "forwarded",
            "for=1.2.3.4, for=\"[2001:db8:cafe::17]:4711\";proto=https",
        );
        assert_eq!(
            settings.resolve(ip("10.0.0.2"), &chain),
            ip("2001:db8:cafe::17")
        );
        // The other header is whatever the client sent: ignored.
        let xff = headers("x-forwarded-for", "1.2.3.4");
        assert_eq!(settings.resolve(ip("10.0.0.2"), &xff), ip("10.0.0.2"));
    }

    #[test]
    fn an_unreadable_hop_ends_the_walk_at_the_last_vouched_address() {
        let settings = ClientIpSettings::trusting("10.0.0.0/8").expect("cidr");
        let chain = headers("x-forwarded-for", "1.2.3.4, unknown, 10.0.0.9");
        assert_eq!(settings.resolve(ip("10.0.0.2"), &chain), ip("10.0.0.9"));
    }

    #[test]
    fn ipv4_mapped_peers_match_ipv4_networks() {
        let settings = ClientIpSettings::trusting("127.0.0.1").expect("cidr");
        let chain = headers("x-forwarded-for", "198.51.100.7");
        assert_eq!(
            settings.resolve(ip("::ffff:127.0.0.1"), &chain),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_bad_proxy_list_is_refused() {
        assert!(ClientIpSettings::trusting("10.0.0.0/8, not-a-net").is_err());
        assert!(
            ClientIpSettings::trusting("")
                .expect("empty")
                .trusted_proxies
                .is_empty()
        );
    }
}
