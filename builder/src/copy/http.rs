//! `ADD <url>`: one GET (http or https, redirects followed, proxies from the environment
//! with NO_PROXY honoured) through ureq, which the crate already uses for registries.
//! The body is streamed to a file while it is hashed.

use crate::error::Context as _;
use std::io::{Read, Write};
use std::path::Path;

use sha2::{Digest, Sha256};

/// A downloaded file.
#[derive(Debug, Clone)]
pub struct Download {
    /// sha256 of the content, hex.
    pub sha256: String,
    pub size: u64,
    /// `Last-Modified`, as unix seconds (the file's mtime, as Docker sets it).
    pub last_modified: Option<i64>,
}

/// GETs `url` into `dest` (created).
pub fn download(url: &str, dest: &Path) -> crate::Result<Download> {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().max_redirects(10).timeout_global(Some(std::time::Duration::from_secs(3600))).user_agent("berth-build").build().into();
    let mut resp = agent.get(url).call().map_err(|e| crate::Error::msg(format!("ADD {url}: {e}")))?;
    let last_modified = resp.headers().get("last-modified").and_then(|v| v.to_str().ok()).and_then(parse_http_date);
    let mut file = std::fs::File::create(dest).with_context(|| format!("{}", dest.display()))?;
    let mut r = resp.body_mut().as_reader();
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = r.read(&mut buf).with_context(|| format!("ADD {url}: reading the body"))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        file.write_all(&buf[..n]).with_context(|| format!("{}", dest.display()))?;
        size += n as u64;
    }
    file.sync_all()?;
    let sha256 = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    Ok(Download { sha256, size, last_modified })
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) -> unix seconds.
pub fn parse_http_date(s: &str) -> Option<i64> {
    let parts: Vec<&str> = s.split_whitespace().collect();
    if parts.len() != 6 || parts[5] != "GMT" {
        return None;
    }
    let day: u32 = parts[1].parse().ok()?;
    let month = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"].iter().position(|m| *m == parts[2])? + 1;
    let year: i64 = parts[3].parse().ok()?;
    let t: Vec<i64> = parts[4].split(':').map(|x| x.parse().ok()).collect::<Option<_>>()?;
    if t.len() != 3 {
        return None;
    }
    let text = format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", t[0], t[1], t[2]);
    berth_spec::image::parse_rfc3339(&text)
}

#[cfg(test)]
mod tests {
    #[test]
    fn http_dates() {
        assert_eq!(super::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(super::parse_http_date("garbage"), None);
    }
}
