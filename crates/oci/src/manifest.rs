//! Image manifests and indexes (Docker v2 schema 2 and OCI), their descriptors and
//! platforms, and every media type berth reads or writes.
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Media types, Docker and OCI.
pub mod media_type {
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_MANIFEST_LIST: &str =
        "application/vnd.docker.distribution.manifest.list.v2+json";
    pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
    pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
    pub const DOCKER_LAYER_FOREIGN_GZIP: &str =
        "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip";
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
    pub const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";
    pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
    pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
    pub const OCI_LAYER_NONDISTRIBUTABLE_GZIP: &str =
        "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip";

    /// True for a single-image manifest (Docker schema 2 or OCI).
    pub fn is_manifest(mt: &str) -> bool {
        mt == DOCKER_MANIFEST || mt == OCI_MANIFEST
    }

    /// True for a multi-platform index (Docker manifest list or OCI index).
    pub fn is_index(mt: &str) -> bool {
        mt == DOCKER_MANIFEST_LIST || mt == OCI_INDEX
    }

    /// How a layer blob is compressed, from its media type.
    pub fn layer_compression(mt: &str) -> Option<super::Compression> {
        use super::Compression::*;
        match mt {
            OCI_LAYER => Some(None),
            DOCKER_LAYER_GZIP
            | DOCKER_LAYER_FOREIGN_GZIP
            | OCI_LAYER_GZIP
            | OCI_LAYER_NONDISTRIBUTABLE_GZIP => Some(Gzip),
            OCI_LAYER_ZSTD => Some(Zstd),
            _ => Option::None,
        }
    }
}

/// Layer compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

/// A content descriptor: what a blob is, how big, and its digest.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
}

/// `os/architecture[/variant]`, as in manifest lists and `--platform`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(
        rename = "os.version",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(rename = "os.features", default, skip_serializing_if = "Vec::is_empty")]
    pub os_features: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum PlatformError {
    #[error("invalid platform {spec:?}: expected os[/arch[/variant]]")]
    Format { spec: String },
}

impl Platform {
    /// The platform berth runs on (`linux/amd64`, `linux/arm64/v8`, …).
    pub fn host() -> Platform {
        let arch = match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            "powerpc64" => "ppc64le",
            "s390x" => "s390x",
            "riscv64" => "riscv64",
            "arm" => "arm",
            other => other,
        };
        Platform {
            os: "linux".into(),
            architecture: arch.into(),
            ..Default::default()
        }
    }

    /// Parses `os[/arch[/variant]]` the way containerd's `platforms.Parse` normalises it
    /// (`x86_64` → `amd64`, `aarch64` → `arm64`, `arm64/v8` → `arm64`).
    pub fn parse(spec: &str) -> Result<Platform, PlatformError> {
        let err = || PlatformError::Format {
            spec: spec.to_owned(),
        };
        let parts: Vec<String> = spec
            .split('/')
            .map(|p| p.trim().to_ascii_lowercase())
            .collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(err());
        }
        let mut p = Platform::host();
        p.os = parts[0].clone();
        if let Some(a) = parts.get(1) {
            p.architecture = match a.as_str() {
                "x86_64" | "x86-64" => "amd64".into(),
                "aarch64" => "arm64".into(),
                "i386" | "i686" => "386".into(),
                "armhf" | "armel" => "arm".into(),
                other => other.to_owned(),
            };
        }
        p.variant = parts.get(2).cloned();
        if p.architecture == "arm64" && p.variant.as_deref() == Some("v8") {
            p.variant = None;
        }
        Ok(p)
    }
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

/// A single-platform image manifest (Docker schema 2 or OCI).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A multi-platform index (Docker manifest list or OCI image index).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    pub schema_version: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    /// The manifest for `want` (os and architecture equal, variant equal when both have
    /// one), in index order.
    pub fn select(&self, want: &Platform) -> Option<&Descriptor> {
        self.manifests.iter().find(|d| {
            d.platform.as_ref().is_some_and(|p| {
                p.os == want.os
                    && p.architecture == want.architecture
                    && (want.variant.is_none() || p.variant.is_none() || p.variant == want.variant)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_manifests_and_selects_platform() {
        let raw = r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.list.v2+json","manifests":[
            {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:aa","size":1,"platform":{"architecture":"arm","os":"linux","variant":"v7"}},
            {"mediaType":"application/vnd.docker.distribution.manifest.v2+json","digest":"sha256:bb","size":2,"platform":{"architecture":"amd64","os":"linux"}}]}"#;
        let idx: Index = serde_json::from_str(raw).unwrap();
        assert!(media_type::is_index(&idx.media_type));
        let d = idx
            .select(&Platform::parse("linux/amd64").unwrap())
            .unwrap();
        assert_eq!(d.digest, "sha256:bb");
        assert!(idx
            .select(&Platform::parse("linux/arm/v6").unwrap())
            .is_none());
        let m: Manifest = serde_json::from_str(r#"{"schemaVersion":2,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:cc","size":3},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+zstd","digest":"sha256:dd","size":4}]}"#).unwrap();
        assert_eq!(
            media_type::layer_compression(&m.layers[0].media_type),
            Some(Compression::Zstd)
        );
        assert_eq!(
            Platform::parse("linux/aarch64/v8").unwrap().to_string(),
            "linux/arm64"
        );
        assert!(Platform::parse("linux//x").is_err());
    }
}
