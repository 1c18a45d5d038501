//! Redis Sentinel: a `redis+sentinel://` URL names the sentinels and the master's name, and
//! every new connection asks the sentinels where the master is now, so after a fail-over the
//! next connection (opened when the old one breaks or answers READONLY) reaches the new master.
//!
//! The URL: `redis+sentinel://[user[:password]@]host[:port][,host[:port]...]/master-name[/db]`
//! (`rediss+sentinel://` for TLS to the sentinels and the master). The port defaults to 26379.
//! The credentials and db are the master's; the sentinels are asked without credentials.

use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{ErrorKind, IntoConnectionInfo, RedisError, RedisResult};
use tokio::sync::Mutex;

/// The schemes of a Sentinel URL, plain and TLS.
const SCHEMES: [(&str, &str); 2] = [("redis+sentinel", "redis"), ("rediss+sentinel", "rediss")];

/// Sentinel's default port.
const DEFAULT_PORT: u16 = 26379;

/// The sentinels of one master, asked where it is each time a connection is opened.
pub(super) struct Sentinels {
    client: Mutex<SentinelClient>,
}

impl Sentinels {
    /// Parses a Sentinel URL; `None` when `url` is not one (another scheme).
    pub(super) fn parse(url: &str) -> Option<RedisResult<Sentinels>> {
        let (scheme, rest) = url.split_once("://")?;
        let (_, node_scheme) = SCHEMES.iter().find(|(s, _)| *s == scheme)?;
        Some(build(node_scheme, rest))
    }

    /// A client for the master the sentinels name now.
    pub(super) async fn master(&self) -> RedisResult<redis::Client> {
        self.client.lock().await.async_get_client().await
    }
}

fn invalid(detail: String) -> RedisError {
    RedisError::from((ErrorKind::InvalidClientConfig, "bad Sentinel URL", detail))
}

fn build(node_scheme: &str, rest: &str) -> RedisResult<Sentinels> {
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (userinfo, hosts) = match authority.rsplit_once('@') {
        Some((userinfo, hosts)) => (Some(userinfo), hosts),
        None => (None, authority),
    };
    let (master_name, db) = match path.split_once('/') {
        Some((name, db)) => (name, Some(db)),
        None => (path, None),
    };
    if master_name.is_empty() {
        return Err(invalid(
            "it names no master: write redis+sentinel://HOST:PORT[,HOST:PORT...]/MASTER-NAME"
                .into(),
        ));
    }
    let mut sentinels = Vec::new();
    for host in hosts.split(',').filter(|h| !h.is_empty()) {
        let host = if host
            .rsplit_once(':')
            .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
        {
            host.to_string()
        } else {
            format!("{host}:{DEFAULT_PORT}")
        };
        let info = format!("{node_scheme}://{host}").into_connection_info()?;
        sentinels.push(info.set_tcp_settings(super::tcp_settings()));
    }
    if sentinels.is_empty() {
        return Err(invalid("it names no sentinel host".into()));
    }
    // The master's credentials and db, read the way a plain URL's are.
    let master_url = format!(
        "{node_scheme}://{}placeholder/{}",
        userinfo.map(|u| format!("{u}@")).unwrap_or_default(),
        db.unwrap_or("0")
    );
    let master = redis::Client::open(master_url.as_str())?;
    let mut node = SentinelNodeConnectionInfo::default()
        .set_redis_connection_info(master.get_connection_info().redis_settings().clone())
        .set_tcp_settings(super::tcp_settings());
    if node_scheme == "rediss" {
        node = node.set_tls_mode(redis::TlsMode::Secure);
    }
    // An owned name: the client library takes a `String` or an `&str` by build features.
    let service: String = master_name.into();
    let client = SentinelClient::build(sentinels, service, Some(node), SentinelServerType::Master)?;
    Ok(Sentinels {
        client: Mutex::new(client),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_hosts_master_and_credentials() {
        assert!(Sentinels::parse("redis://h:1").is_none());
        assert!(
            Sentinels::parse("redis+sentinel://a:1,b/mymaster")
                .unwrap()
                .is_ok()
        );
        assert!(
            Sentinels::parse("redis+sentinel://u:p@a:26379/mymaster/2")
                .unwrap()
                .is_ok()
        );
        let no_master = Sentinels::parse("redis+sentinel://a:1").unwrap();
        assert!(no_master.err().unwrap().to_string().contains("MASTER-NAME"));
        assert!(Sentinels::parse("redis+sentinel:///m").unwrap().is_err());
    }
}
