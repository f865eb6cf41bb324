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
                "return=representation" => prefer.representation = true,
                "return=minimal" | "return=headers-only" => prefer.representation = false,
                "count=exact" | "count=planned" | "count=estimated" => prefer.count = true,
                "resolution=merge-duplicates" => prefer.resolution = Some(true),
                "resolution=ignore-duplicates" => prefer.resolution = Some(false),
                _ => {}
            }
        }
        prefer
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
}
