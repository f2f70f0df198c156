//! What Opsdeck fetches on an operator's say-so (health checks, scrapes, webhooks): any address
//! but those in `outbound_deny` (by default the link-local networks and the cloud metadata
//! addresses), checked after DNS resolution, so that a name resolving to a denied address is
//! refused too, and again on every redirect. No proxy from the environment is used, so the
//! check sees the real destination. Errors name the cause and never echo a response body.

use app::config::{Cidr, Config};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Why an address may not be reached, or None.
pub fn denied(ip: IpAddr, deny: &[Cidr]) -> Option<String> {
    deny.iter().find(|c| c.contains(ip)).map(|c| {
        format!("refused: {ip} is in outbound_deny ({c}), which this server may not reach")
    })
}

/// Checks a URL's host when it is an address (names are checked when they are resolved).
pub fn check_url(url: &reqwest::Url, deny: &[Cidr]) -> Result<(), String> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    denied(ip, deny).map_or(Ok(()), Err)
}

/// Resolves with the system's resolver and keeps only the addresses that may be reached.
struct Guarded {
    deny: Arc<Vec<Cidr>>,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let deny = self.deny.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| denied(a.ip(), &deny).is_none())
                .collect();
            if allowed.is_empty() {
                let why = found
                    .first()
                    .and_then(|a| denied(a.ip(), &deny))
                    .unwrap_or_else(|| format!("{host} has no address"));
                return Err(format!("{host}: {why}").into());
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// An HTTP client for operator-given URLs: the deny list applied to every address it connects
/// to, at most `redirects` redirects, each checked as well; its user agent `opsdeck-{who}/{version}`.
pub fn client(config: &Config, who: &str, redirects: usize) -> reqwest::Client {
    let user_agent = format!("opsdeck-{who}/{}", env!("CARGO_PKG_VERSION"));
    let deny = Arc::new(config.outbound_deny.clone());
    let for_redirects = deny.clone();
    let policy = reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() >= redirects {
            return attempt.error(format!("more than {redirects} redirects"));
        }
        match check_url(attempt.url(), &for_redirects) {
            Ok(()) => attempt.follow(),
            Err(why) => attempt.error(format!("a redirect was {why}")),
        }
    });
    reqwest::Client::builder()
        .user_agent(user_agent)
        .redirect(policy)
        .no_proxy()
        .dns_resolver(Arc::new(Guarded { deny }))
        .build()
        .unwrap_or_default()
}

/// The innermost cause of an error, which says what happened ("Connection refused", "refused:
/// … is in outbound_deny"), with any URL in it redacted.
pub fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cause: &dyn std::error::Error = e;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    app::redact::text(&cause.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_deny_list() {
        let deny = Config::default().outbound_deny;
        for (ip, refused) in [
            ("169.254.169.254", true),
            ("169.254.1.1", true),
            ("fe80::1", true),
            ("100.100.100.200", true),
            ("fd00:ec2::254", true),
            ("::ffff:169.254.169.254", true),
            ("127.0.0.1", false),
            ("10.0.0.5", false),
            ("93.184.216.34", false),
        ] {
            assert_eq!(
                denied(ip.parse().unwrap(), &deny).is_some(),
                refused,
                "{ip}"
            );
        }
        let u = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(
            check_url(&u("http://169.254.169.254/latest/meta-data/"), &deny)
                .unwrap_err()
                .contains("outbound_deny")
        );
        // The URL parser reads odd spellings of an address as the address.
        assert!(check_url(&u("http://0xA9FEA9FE/"), &deny).is_err());
        assert!(check_url(&u("http://[fe80::1]/"), &deny).is_err());
        assert!(
            check_url(&u("http://metadata.example/"), &deny).is_ok(),
            "names: at resolution"
        );
        assert!(check_url(&u("http://127.0.0.1:9/"), &deny).is_ok());
    }
}
