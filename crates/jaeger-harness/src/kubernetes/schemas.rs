//! The Kubernetes JSON schemas kubeconform validates against, made to work offline.
//!
//! The PyPI package `kubernetes-validate` ships them for several Kubernetes releases, but each
//! file names itself with an `$id` under kubernetes.io and points at the shared definitions
//! with an absolute `$ref` (`/api/_definitions.json#/...`), which a validator resolves against
//! that `$id`: a download that cannot happen here. Dropping `$id` and making those `$ref`s
//! relative (`_definitions.json#/...`) lets them resolve next to the file. Done once, into the
//! cache.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

use super::{run, KubernetesError};
use crate::locate::find_on_path;

/// The `kubernetes-validate` release the schemas come from.
pub const KUBERNETES_VALIDATE_VERSION: &str = "1.37.0";
/// The Kubernetes release validated against: old enough for any maintained cluster, and the
/// fields the manifests use are older still.
pub const SCHEMA_KUBERNETES_VERSION: &str = "1.33.0";

/// Where the package keeps the schemas, relative to its install folder.
const PACKAGE_SCHEMA_DIR: &str = "kubernetes_validate/kubernetes-json-schema";

/// The rewritten schemas under `cache`, fetched and rewritten when missing. The finished
/// folder is renamed into place whole, so a half-written one is never used.
pub(super) fn local_schemas(cache: &Path) -> Result<PathBuf, KubernetesError> {
    let target = cache.join(format!("kubernetes-schemas-{KUBERNETES_VALIDATE_VERSION}"));
    if target.is_dir() {
        return Ok(target);
    }
    let python = find_on_path("python3", std::env::var_os("PATH").as_deref()).ok_or_else(|| {
        KubernetesError::Missing {
            program: "python3".to_owned(),
            hint: "install python3 (with venv) to fetch kubernetes-validate's schemas, or set \
                   KUBERNETES_SCHEMAS_DIR"
                .to_owned(),
        }
    })?;
    std::fs::create_dir_all(cache)
        .map_err(|e| KubernetesError::io(format!("cannot create {}", cache.display()), e))?;
    let scratch = tempfile::Builder::new()
        .prefix("kubernetes-schemas-build-")
        .tempdir_in(cache)
        .map_err(|e| KubernetesError::io("a scratch folder in the cache", e))?;
    eprintln!(
        "jaeger-harness: fetching kubernetes-validate {KUBERNETES_VALIDATE_VERSION}'s schemas"
    );
    // A virtual environment of its own: a system python3 may have no pip, or refuse to
    // install (externally managed); only the package's files are wanted, not its code.
    let venv = scratch.path().join("venv");
    run(
        Command::new(&python).arg("-m").arg("venv").arg(&venv),
        "python3 -m venv",
    )?;
    let package = scratch.path().join("package");
    let requirement = format!("kubernetes-validate=={KUBERNETES_VALIDATE_VERSION}");
    run(
        Command::new(venv.join("bin").join("python"))
            .args(["-m", "pip", "install", "--quiet", "--no-deps", "--target"])
            .arg(&package)
            .arg(&requirement)
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1"),
        &format!("pip install {requirement}"),
    )?;
    let rewritten = scratch.path().join("schemas");
    for flavour in ["local", "local-strict"] {
        let name = format!("v{SCHEMA_KUBERNETES_VERSION}-{flavour}");
        rewrite_folder(
            &package.join(PACKAGE_SCHEMA_DIR).join(&name),
            &rewritten.join(&name),
        )?;
    }
    match std::fs::rename(&rewritten, &target) {
        Ok(()) => {}
        // Another process finished first: its copy is the same.
        Err(_) if target.is_dir() => {}
        Err(e) => {
            return Err(KubernetesError::io(
                format!("cannot move the schemas to {}", target.display()),
                e,
            ))
        }
    }
    Ok(target)
}

/// Rewrites every `*.json` of `from` into `to` (see the module's comment).
fn rewrite_folder(from: &Path, to: &Path) -> Result<(), KubernetesError> {
    let entries =
        std::fs::read_dir(from).map_err(|_| KubernetesError::SchemaLayout(from.to_path_buf()))?;
    std::fs::create_dir_all(to)
        .map_err(|e| KubernetesError::io(format!("cannot create {}", to.display()), e))?;
    for entry in entries {
        let path = entry
            .map_err(|e| KubernetesError::io(format!("cannot list {}", from.display()), e))?
            .path();
        if path.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| KubernetesError::io(format!("cannot read {}", path.display()), e))?;
        let mut schema: Value =
            serde_json::from_str(&text).map_err(|source| KubernetesError::Json {
                path: path.clone(),
                source,
            })?;
        make_local(&mut schema);
        let out = to.join(path.file_name().unwrap_or_default());
        let json = serde_json::to_string(&schema).map_err(|source| KubernetesError::Json {
            path: out.clone(),
            source,
        })?;
        std::fs::write(&out, json)
            .map_err(|e| KubernetesError::io(format!("cannot write {}", out.display()), e))?;
    }
    Ok(())
}

/// Drops every `$id` and turns `/api/x.json#...` references into `x.json#...`.
fn make_local(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("$id");
            for (key, child) in map.iter_mut() {
                match child {
                    Value::String(reference) if key == "$ref" => {
                        if let Some(relative) = reference.strip_prefix("/api/") {
                            *reference = relative.to_owned();
                        }
                    }
                    _ => make_local(child),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(make_local),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_go_and_absolute_references_become_relative() {
        let mut schema = serde_json::json!({
            "$id": "https://kubernetes.io/api/deployment/apps/v1",
            "properties": {
                "spec": {"$ref": "/api/_definitions.json#/$defs/io.k8s.api.apps.v1.DeploymentSpec"},
                "local": {"$ref": "#/$defs/x"},
                "items": [{"$id": "inner", "$ref": "/api/_definitions.json#/$defs/y"}]
            }
        });
        make_local(&mut schema);
        assert_eq!(
            schema,
            serde_json::json!({
                "properties": {
                    "spec": {"$ref": "_definitions.json#/$defs/io.k8s.api.apps.v1.DeploymentSpec"},
                    "local": {"$ref": "#/$defs/x"},
                    "items": [{"$ref": "_definitions.json#/$defs/y"}]
                }
            })
        );
    }
}
