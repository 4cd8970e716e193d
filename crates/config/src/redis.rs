//! KubeSphere's top-level `redis:` block (`pkg/simple/client/cache/options.go`).

use crate::error::Report;
use crate::fields::Fields;
use crate::raw::Node;
use crate::{RedisOptions, Secret};

const REDIS_KEYS: &[&str] = &["host", "port", "password", "db"];

/// KubeSphere's top-level `redis:`: `Some` only when `host` is set.
pub(crate) fn read(
    report: &mut Report,
    section: Option<(Option<usize>, &Node)>,
) -> Option<RedisOptions> {
    let (line, node) = section?;
    let f = Fields::read(report, Some(node), "redis", line, REDIS_KEYS, &|_| None);
    let host = f
        .get("host")
        .and_then(|v| v.string(report))
        .unwrap_or_default();
    let port = match f.get("port") {
        None => 6379,
        Some(v) => match v.int::<u16>(report) {
            Some(0) => {
                report.error(v.line, &v.path, "must be a port number from 1 to 65535");
                6379
            }
            Some(p) => p,
            None => 6379,
        },
    };
    let password = Secret::new(
        f.get("password")
            .and_then(|v| v.secret(report))
            .unwrap_or_default(),
    );
    let db = match f.get("db") {
        None => 0,
        Some(v) => match v.int::<i64>(report) {
            Some(db) if db < 0 => {
                report.error(v.line, &v.path, "must not be negative");
                0
            }
            Some(db) => db,
            None => 0,
        },
    };
    if host.trim().is_empty() {
        report.warn(
            f.line_of("host"),
            &f.key_path("host"),
            "no host: the redis block is ignored and sessions are kept per process, which is \
             inconsistent when running more than one replica",
        );
        return None;
    }
    Some(RedisOptions {
        host,
        port,
        password,
        db,
    })
}
