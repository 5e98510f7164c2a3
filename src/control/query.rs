//! The journal routes' query string (`kind`, `token`, `topic`, `protocol`, `connection`,
//! `since`, `lint`, plus each route's own options), parsed once for `GET /journal`, `/journal/wait`,
//! `/events` and the payload-lint filter, refusing unknown or repeated keys.

use super::error::ApiError;
use crate::journal::{EventKind, Filter};
use crate::model::{DeviceToken, Protocol};
use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use serde_json::Value;

/// The query-string keys every journal route understands.
const FILTER_KEYS: [&str; 7] = [
    "kind",
    "token",
    "topic",
    "protocol",
    "connection",
    "since",
    "lint",
];

/// Query pairs in order, kept raw so unknown or repeated keys can be refused (a typo must not
/// silently widen a filter).
pub(super) type Pairs = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// A parsed query: the filter plus the route's own numeric options.
pub(super) struct Params {
    pub filter: Filter,
    extra: Vec<(String, String)>,
}

impl Params {
    /// Parses `pairs`, allowing the filter keys plus `extra_keys`.
    pub fn parse(pairs: Pairs, extra_keys: &[&str]) -> Result<Params, ApiError> {
        let Query(pairs) = pairs.map_err(|e| ApiError::bad_request(e.body_text()))?;
        let mut filter = Filter::default();
        let mut extra = Vec::new();
        let mut seen: Vec<&str> = Vec::new();
        for (key, value) in &pairs {
            if seen.contains(&key.as_str()) {
                return Err(ApiError::bad_request(format!("query key {key:?} repeated")));
            }
            seen.push(key);
            match key.as_str() {
                "kind" => {
                    filter.kind = Some(EventKind::parse(value).ok_or_else(|| {
                        let names: Vec<_> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
                        ApiError::bad_request(format!(
                            "unknown kind {value:?}; expected one of {}",
                            names.join(", ")
                        ))
                    })?)
                }
                "token" => {
                    if !DeviceToken::from_hex(value).is_some_and(|t| !t.is_empty()) {
                        return Err(ApiError::bad_request(format!("token {value:?} is not hex")));
                    }
                    filter.token = Some(value.clone());
                }
                "topic" => filter.topic = Some(value.clone()),
                "protocol" => {
                    filter.protocol = Some(parse_protocol(value).ok_or_else(|| {
                        ApiError::bad_request(format!(
                            "unknown protocol {value:?}; expected legacy, feedback or http2"
                        ))
                    })?)
                }
                "connection" => filter.connection = Some(number(key, value)?),
                "lint" => {
                    filter.lint = Some(crate::lint::Level::parse(value).ok_or_else(|| {
                        ApiError::bad_request(format!("lint must be ok or warn, got {value:?}"))
                    })?)
                }
                "since" => filter.since = Some(number(key, value)?),
                k if extra_keys.contains(&k) => extra.push((key.clone(), value.clone())),
                _ => {
                    let mut allowed: Vec<&str> = FILTER_KEYS.to_vec();
                    allowed.extend_from_slice(extra_keys);
                    return Err(ApiError::bad_request(format!(
                        "unknown query key {key:?}; expected one of {}",
                        allowed.join(", ")
                    )));
                }
            }
        }
        Ok(Params { filter, extra })
    }

    /// A route option as a number, or `default` when absent.
    pub fn get(&self, key: &str, default: u64) -> Result<u64, ApiError> {
        match self.extra.iter().find(|(k, _)| k == key) {
            Some((k, v)) => number(k, v),
            None => Ok(default),
        }
    }
}

fn parse_protocol(value: &str) -> Option<Protocol> {
    serde_json::from_value(Value::String(value.to_string())).ok()
}

/// A query number: a non-negative integer within JSON's int64 (the OpenAPI document's `format`).
fn number(key: &str, value: &str) -> Result<u64, ApiError> {
    value
        .parse::<u64>()
        .ok()
        .filter(|n| i64::try_from(*n).is_ok())
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{key} must be an integer from 0 to {}, got {value:?}",
                i64::MAX
            ))
        })
}
