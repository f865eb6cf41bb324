//! Request headers that shape a PostgREST response: `Prefer`, `Range`, `Accept`.

use axum::http::HeaderMap;

/// The `Prefer` preferences the embedded stack honours (others are ignored, like PostgREST's
/// default `handling=lenient`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Prefer {
    /// `return=representation`.
    pub representation: bool,
    /// `count=exact` (also `planned` and `estimated`, answered exactly).
    pub count: bool,
    /// `resolution=merge-duplicates` → Some(true), `ignore-duplicates` → Some(false).
    pub resolution: Option<bool>,
    /// The `return=` and `count=` preferences as sent, for `Preference-Applied`.
    return_sent: Option<&'static str>,
    count_sent: Option<&'static str>,
}

/// What a request does: PostgREST reports a preference as applied only where it applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applies {
    Read,
    Insert,
    Update,
    Delete,
    Rpc,
}

impl Prefer {
    pub fn from_headers(headers: &HeaderMap) -> Self {
        let mut prefer = Prefer::default();
        let values = headers
            .get_all("prefer")
            .iter()
            .filter_map(|v| v.to_str().ok());
        for item in values.flat_map(|v| v.split(',')).map(str::trim) {
            match item {
                "return=representation" => {
                    prefer.representation = true;
                    prefer.return_sent = Some("return=representation");
                }
                "return=minimal" => {
                    prefer.representation = false;
                    prefer.return_sent = Some("return=minimal");
                }
                "return=headers-only" => {
                    prefer.representation = false;
                    prefer.return_sent = Some("return=headers-only");
                }
                "count=exact" => (prefer.count, prefer.count_sent) = (true, Some("count=exact")),
                "count=planned" => {
                    (prefer.count, prefer.count_sent) = (true, Some("count=planned"))
                }
                "count=estimated" => {
                    (prefer.count, prefer.count_sent) = (true, Some("count=estimated"))
                }
                "resolution=merge-duplicates" => prefer.resolution = Some(true),
                "resolution=ignore-duplicates" => prefer.resolution = Some(false),
                _ => {}
            }
        }
        prefer
    }

    /// `Preference-Applied` as PostgREST v14 sends it: the honoured preferences the client
    /// sent, in its order — `resolution` on inserts (every table here has a primary key),
    /// `return` on writes, `count` on any request. `None` when there is none to report.
    pub fn applied(&self, to: Applies) -> Option<String> {
        let writes = matches!(to, Applies::Insert | Applies::Update | Applies::Delete);
        let resolution = match self.resolution {
            Some(true) if to == Applies::Insert => Some("resolution=merge-duplicates"),
            Some(false) if to == Applies::Insert => Some("resolution=ignore-duplicates"),
            _ => None,
        };
        let values: Vec<&str> = [
            resolution,
            self.return_sent.filter(|_| writes),
            self.count_sent,
        ]
        .into_iter()
        .flatten()
        .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

/// `Range: <first>-[<last>]` in items: `(offset, limit)`. `Err` for a range that cannot be
/// satisfied (last before first).
pub fn range(headers: &HeaderMap) -> Result<Option<(i64, Option<i64>)>, ()> {
    let Some(value) = headers.get("range").and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    let value = value.trim().strip_prefix("items=").unwrap_or(value.trim());
    let (first, last) = value.split_once('-').ok_or(())?;
    let first: i64 = first.trim().parse().map_err(|_| ())?;
    if first < 0 {
        return Err(());
    }
    match last.trim() {
        "" => Ok(Some((first, None))),
        last => {
            let last: i64 = last.parse().map_err(|_| ())?;
            if last < first {
                return Err(());
            }
            Ok(Some((first, Some(last - first + 1))))
        }
    }
}

/// `Accept: application/vnd.pgrst.object+json`: one object instead of an array.
pub fn wants_object(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/vnd.pgrst.object"))
}

/// `Content-Range` for a page of `page` rows starting at `offset`.
pub fn content_range(offset: i64, page: i64, total: Option<i64>) -> String {
    let total = total.map_or_else(|| "*".to_string(), |t| t.to_string());
    if page > 0 {
        format!("{offset}-{}/{total}", offset + page - 1)
    } else {
        format!("*/{total}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefer_and_range_parse() {
        let mut h = HeaderMap::new();
        h.insert(
            "prefer",
            "return=representation, count=exact".parse().unwrap(),
        );
        h.append("prefer", "resolution=ignore-duplicates".parse().unwrap());
        h.insert("range", "10-19".parse().unwrap());
        let p = Prefer::from_headers(&h);
        assert!(p.representation && p.count);
        assert_eq!(p.resolution, Some(false));
        assert_eq!(range(&h), Ok(Some((10, Some(10)))));
        h.insert("range", "5-1".parse().unwrap());
        assert_eq!(range(&h), Err(()));
        assert_eq!(content_range(10, 10, Some(42)), "10-19/42");
        assert_eq!(content_range(0, 0, None), "*/*");
    }

    #[test]
    fn applied_preferences_are_the_sent_ones_that_apply_in_postgrest_order() {
        let mut h = HeaderMap::new();
        h.insert(
            "prefer",
            "count=planned, return=minimal, resolution=merge-duplicates, tx=rollback"
                .parse()
                .unwrap(),
        );
        let p = Prefer::from_headers(&h);
        assert_eq!(
            p.applied(Applies::Insert).as_deref(),
            Some("resolution=merge-duplicates, return=minimal, count=planned")
        );
        assert_eq!(
            p.applied(Applies::Update).as_deref(),
            Some("return=minimal, count=planned")
        );
        assert_eq!(p.applied(Applies::Read).as_deref(), Some("count=planned"));
        assert_eq!(Prefer::default().applied(Applies::Insert), None);
        h.insert("prefer", "return=representation".parse().unwrap());
        assert_eq!(Prefer::from_headers(&h).applied(Applies::Rpc), None);
    }
}
