//! `custos healthcheck`: asks a running server's `/readyz` and exits 0 only on 200. What a
//! container `HEALTHCHECK` or a service manager calls: the binary itself, no shell or curl
//! in the image. Plain HTTP to the server's own address (terminate TLS in front of it, or
//! point `--url` at a plain-HTTP listener).

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::CliError;

/// Where to ask: `--url` (`http://host:port/path`) or `CUSTOS_BIND`'s port on loopback.
pub fn target(url: Option<&str>, bind: SocketAddr) -> Result<(String, String), CliError> {
    let Some(url) = url else {
        let host = if bind.ip().is_unspecified() {
            SocketAddr::new(
                if bind.is_ipv4() { [127, 0, 0, 1].into() } else { std::net::Ipv6Addr::LOCALHOST.into() },
                bind.port(),
            )
        } else {
            bind
        };
        return Ok((host.to_string(), "/readyz".into()));
    };
    let rest = url.strip_prefix("http://").ok_or_else(|| CliError::Usage("--url: http://host:port/path".into()))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/readyz"),
    };
    if authority.is_empty() || !authority.contains(':') {
        return Err(CliError::Usage("--url: http://host:port/path (with a port)".into()));
    }
    Ok((authority.to_owned(), path.to_owned()))
}

/// One GET; Ok on HTTP 200 within the timeout.
pub async fn run(authority: &str, path: &str, timeout: Duration) -> Result<(), CliError> {
    let ask = async {
        let mut stream = tokio::net::TcpStream::connect(authority).await?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: custos-healthcheck\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(request.as_bytes()).await?;
        let mut head = Vec::with_capacity(256);
        let mut buf = [0u8; 256];
        while !head.windows(2).any(|w| w == b"\r\n") && head.len() < 4096 {
            let n = stream.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            head.extend_from_slice(&buf[..n]);
        }
        std::io::Result::Ok(String::from_utf8_lossy(&head).lines().next().unwrap_or_default().to_owned())
    };
    let status_line = tokio::time::timeout(timeout, ask)
        .await
        .map_err(|_| CliError::Runtime(anyhow::anyhow!("{authority}{path}: no answer within {timeout:?}")))?
        .map_err(|e| CliError::Runtime(anyhow::anyhow!("{authority}{path}: {e}")))?;
    let code = status_line.split_whitespace().nth(1).unwrap_or("");
    if code == "200" {
        println!("ready");
        Ok(())
    } else {
        Err(CliError::Runtime(anyhow::anyhow!("{authority}{path}: not ready ({})", status_line.trim())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        let bind: SocketAddr = "0.0.0.0:8080".parse().unwrap();
        assert_eq!(target(None, bind).unwrap(), ("127.0.0.1:8080".into(), "/readyz".into()));
        assert_eq!(
            target(Some("http://10.0.0.1:9000/readyz"), bind).unwrap(),
            ("10.0.0.1:9000".into(), "/readyz".into())
        );
        assert!(target(Some("https://x:1/"), bind).is_err());
        assert!(target(Some("http://nohost/"), bind).is_err());
    }
}
