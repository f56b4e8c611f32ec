//! The environment variables a collector or Jaeger config reads (`${env:NAME}`,
//! `${env:NAME:-default}`, or the bare `${NAME}`), and the value an entry takes in a given
//! environment. The static checks of the compose file and of the Kubernetes manifests use
//! them to prove that every variable without a default is set where the config runs.

use std::collections::BTreeMap;

/// One `${...}` reference of a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvReference {
    /// The variable's name.
    pub name: String,
    /// The text after `:-`, if any; `None` means the variable must be set.
    pub default: Option<String>,
}

/// Every reference in `text`, in order (`$${...}` is an escaped literal and skipped).
pub fn env_references(text: &str) -> Vec<EnvReference> {
    let mut found = Vec::new();
    walk(text, |reference| {
        found.push(reference.clone());
        None
    });
    found
}

/// `text` with every reference replaced by its variable from `env`, else its default; a
/// reference with neither is left as it was (so a check can notice it).
pub fn substitute(text: &str, env: &BTreeMap<String, String>) -> String {
    walk(text, |reference| {
        env.get(&reference.name)
            .cloned()
            .or_else(|| reference.default.clone())
    })
}

/// Calls `replace` on each reference; returns the text with the replacements it made.
fn walk(text: &str, mut replace: impl FnMut(&EnvReference) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let escaped = rest[..start].ends_with('$');
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let whole = &rest[start..start + 2 + end + 1];
        rest = &after[end + 1..];
        if escaped {
            out.push_str(whole);
            continue;
        }
        let inner = &after[..end];
        let inner = inner.strip_prefix("env:").unwrap_or(inner);
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default.to_owned())),
            None => (inner, None),
        };
        let reference = EnvReference {
            name: name.to_owned(),
            default,
        };
        match replace(&reference) {
            Some(value) => out.push_str(&value),
            None => out.push_str(whole),
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_references_with_and_without_defaults() {
        let text = "a: ${env:A}\nb: ${env:B:-[x:1, y:2]}/keys\nc: ${C}\nd: $${env:NOT}\n";
        let names: Vec<(String, Option<String>)> = env_references(text)
            .into_iter()
            .map(|r| (r.name, r.default))
            .collect();
        assert_eq!(
            names,
            [
                ("A".to_owned(), None),
                ("B".to_owned(), Some("[x:1, y:2]".to_owned())),
                ("C".to_owned(), None),
            ]
        );
    }

    #[test]
    fn substitutes_the_environment_then_the_default() {
        let env = BTreeMap::from([("A".to_owned(), "set".to_owned())]);
        assert_eq!(
            substitute("${env:A:-d}|${env:B:-/badger}/keys|${env:C}", &env),
            "set|/badger/keys|${env:C}"
        );
    }
}
