//! `--compare`: the variants of a side-by-side run. Each is query parameters
//! merged into the URL's query and/or headers, items separated by `;`:
//! `mode=concurrent&hedge_after=p95` or
//! `mode=concurrent;header=baggage: latency.orders=900ms`.

use super::record::Variant;

/// One `--compare` value, as parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct VariantSpec {
    /// As the user wrote it.
    pub label: String,
    /// Set on the URL, replacing a parameter of the same name.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
}

/// Parses one `--compare` value.
pub fn parse_variant(value: &str) -> Result<VariantSpec, String> {
    let mut spec = VariantSpec {
        label: value.trim().to_owned(),
        query: Vec::new(),
        headers: Vec::new(),
    };
    for item in value.split(';').map(str::trim).filter(|i| !i.is_empty()) {
        if let Some(header) = item.strip_prefix("header=") {
            spec.headers
                .push(super::parse_header(header).map_err(|e| format!("{value:?}: {e}"))?);
            continue;
        }
        for pair in item.split('&').filter(|p| !p.is_empty()) {
            let (name, val) = pair.split_once('=').ok_or_else(|| {
                format!("{value:?}: {pair:?} is neither NAME=VALUE nor header=NAME: VALUE")
            })?;
            if name.is_empty() {
                return Err(format!("{value:?}: a query parameter needs a name"));
            }
            spec.query.push((name.to_owned(), val.to_owned()));
        }
    }
    if spec.query.is_empty() && spec.headers.is_empty() {
        return Err(format!(
            "{value:?}: a variant needs a query parameter or a header, e.g. 'mode=concurrent' or 'header=baggage: latency.orders=900ms'"
        ));
    }
    Ok(spec)
}

/// The variants of a run: one per spec (after `base_headers`, which every
/// request carries), or the URL alone.
pub fn variants(
    url: &reqwest::Url,
    base_headers: &[(String, String)],
    specs: &[VariantSpec],
) -> Vec<Variant> {
    if specs.is_empty() {
        return vec![Variant {
            label: url.to_string(),
            url: url.clone(),
            headers: base_headers.to_vec(),
        }];
    }
    specs
        .iter()
        .map(|spec| Variant {
            label: spec.label.clone(),
            url: merge_query(url, &spec.query),
            headers: base_headers.iter().chain(&spec.headers).cloned().collect(),
        })
        .collect()
}

/// `url` with `params` set: each replaces the parameters of its name.
fn merge_query(url: &reqwest::Url, params: &[(String, String)]) -> reqwest::Url {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(name, _)| !params.iter().any(|(n, _)| n == name))
        .map(|(n, v)| (n.into_owned(), v.into_owned()))
        .collect();
    let mut merged = url.clone();
    merged
        .query_pairs_mut()
        .clear()
        .extend_pairs(kept.iter().chain(params));
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_variant_sets_query_parameters_and_headers() {
        let spec =
            parse_variant("mode=concurrent&hedge_after=p95; header=baggage: latency.orders=900ms")
                .unwrap();
        assert_eq!(
            spec.query,
            [
                ("mode".into(), "concurrent".into()),
                ("hedge_after".into(), "p95".into())
            ]
        );
        assert_eq!(
            spec.headers,
            [("baggage".into(), "latency.orders=900ms".into())]
        );
        let url = reqwest::Url::parse("http://127.0.0.1:8080/user-profile/42?mode=sequential&x=1")
            .unwrap();
        let base = [("x-test".to_owned(), "1".to_owned())];
        let v = variants(&url, &base, &[spec]);
        assert_eq!(
            v[0].url.as_str(),
            "http://127.0.0.1:8080/user-profile/42?x=1&mode=concurrent&hedge_after=p95"
        );
        assert_eq!(v[0].headers.len(), 2);
        assert_eq!(
            v[0].label,
            "mode=concurrent&hedge_after=p95; header=baggage: latency.orders=900ms"
        );
    }

    #[test]
    fn without_variants_the_url_is_the_one_variant() {
        let url = reqwest::Url::parse("http://127.0.0.1:8080/x").unwrap();
        let v = variants(&url, &[], &[]);
        assert_eq!((v.len(), v[0].url.clone()), (1, url));
    }

    #[test]
    fn malformed_variants_are_refused() {
        for bad in ["", "mode", "=x", "header=nocolon", "header=bad name: x"] {
            assert!(parse_variant(bad).is_err(), "{bad:?}");
        }
    }
}
