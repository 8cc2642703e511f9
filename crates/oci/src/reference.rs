//! Docker image references: `[domain[:port]/]path[:tag][@digest]`, parsed and normalised the
//! way docker/distribution's `ParseNormalizedNamed` does (`busybox` →
//! `docker.io/library/busybox`), with the same error messages.
//!
//! Grammar (distribution/reference):
//! - domain: `host[:port]`, host = DNS labels `[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?` joined
//!   by `.`, or a bracketed IPv6 address; the first path element is a domain only when it
//!   contains `.` or `:`, is `localhost`, or has an uppercase letter.
//! - path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, components joined by `/`.
//! - tag: `[\w][\w.-]{0,127}`; digest: `algorithm:hex` (sha256 with 64 lowercase hex).
use std::fmt;

/// The registry that bare names (`busybox`, `user/app`) live on.
pub const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DOMAIN: &str = "index.docker.io";
const OFFICIAL_PREFIX: &str = "library/";
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// A parsed, normalised reference: always has a domain and a path; a tag, a digest, both or
/// neither.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why a string is not a reference. Messages are Docker's, word for word.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    Format,
    #[error("invalid reference format: repository name ({remote}) must be lowercase")]
    Uppercase { remote: String },
    #[error("repository name must not be more than 255 characters")]
    TooLong,
    #[error("invalid repository name ({name}), cannot specify 64-byte hexadecimal strings")]
    HexName { name: String },
    #[error("unsupported digest algorithm")]
    DigestAlgorithm,
    #[error("invalid checksum digest length")]
    DigestLength,
    #[error("invalid checksum digest format")]
    DigestFormat,
}

/// True for exactly 64 lowercase hex characters (an image ID without its algorithm).
pub fn is_full_hex_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn valid_dns_label(c: &str) -> bool {
    let b = c.as_bytes();
    !b.is_empty()
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
}

/// `host[:port]` where host is a DNS name or `[ipv6]`.
fn valid_domain(d: &str) -> bool {
    let (host_ok, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some((inside, after)) = rest.split_once(']') else {
            return false;
        };
        let ok = !inside.is_empty() && inside.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        let port = match after {
            "" => None,
            a => match a.strip_prefix(':') {
                Some(p) => Some(p),
                None => return false,
            },
        };
        (ok, port)
    } else {
        let (host, port) = match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        };
        (host.split('.').all(valid_dns_label), port)
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn valid_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        if !(sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-')) {
            return false;
        }
    }
    true
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= TAG_MAX
        && word(b[0])
        && b.iter().all(|&x| word(x) || x == b'.' || x == b'-')
}

/// `[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`, then the rules of
/// `digest.Parse` (sha256/384/512 only, exact length, lowercase hex).
fn check_digest(d: &str) -> Result<(), ReferenceError> {
    let (alg, hex) = d.split_once(':').ok_or(ReferenceError::Format)?;
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(u8::is_ascii_alphanumeric)
    });
    if !alg_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ReferenceError::Format);
    }
    let want = match alg {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        _ => return Err(ReferenceError::DigestAlgorithm),
    };
    if hex.len() != want {
        return Err(ReferenceError::DigestLength);
    }
    if hex.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err(ReferenceError::DigestFormat);
    }
    Ok(())
}

/// Docker's `splitDockerDomain`: (domain, remainder) with `library/` added for official
/// images.
fn split_domain(name: &str) -> (String, String) {
    let (mut domain, mut rest) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_owned(), rest.to_owned())
        }
        _ => (DEFAULT_DOMAIN.to_owned(), name.to_owned()),
    };
    if domain == LEGACY_DOMAIN {
        domain = DEFAULT_DOMAIN.to_owned();
    }
    if domain == DEFAULT_DOMAIN && !rest.contains('/') {
        rest = format!("{OFFICIAL_PREFIX}{rest}");
    }
    (domain, rest)
}

impl Reference {
    /// Parses and normalises a reference; no default tag is added.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if is_full_hex_id(s) {
            return Err(ReferenceError::HexName { name: s.to_owned() });
        }
        let (domain, remainder) = split_domain(s);
        let remote = remainder.split(':').next().unwrap_or_default();
        if remote.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase {
                remote: remote.to_owned(),
            });
        }
        let (rest, digest) = match remainder.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (remainder.as_str(), None),
        };
        let (path, tag) = match rest.rsplit_once(':') {
            Some((p, t)) if !t.contains('/') => (p, Some(t)),
            _ => (rest, None),
        };
        if !valid_domain(&domain)
            || !path.split('/').all(valid_component)
            || !tag.is_none_or(valid_tag)
        {
            return Err(ReferenceError::Format);
        }
        if let Some(d) = digest {
            check_digest(d)?;
        }
        if domain.len() + 1 + path.len() > NAME_MAX {
            return Err(ReferenceError::TooLong);
        }
        Ok(Reference {
            domain,
            path: path.to_owned(),
            tag: tag.map(str::to_owned),
            digest: digest.map(str::to_owned),
        })
    }

    /// Like [`Reference::parse`], adding `:latest` when neither tag nor digest is given
    /// (Docker's `TagNameOnly`).
    pub fn parse_with_default_tag(s: &str) -> Result<Reference, ReferenceError> {
        Ok(Self::parse(s)?.with_default_tag())
    }

    /// Adds `:latest` when neither tag nor digest is set.
    pub fn with_default_tag(mut self) -> Reference {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some("latest".into());
        }
        self
    }

    /// The same repository with `tag` (and no digest).
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::Format);
        }
        Ok(Reference {
            tag: Some(tag.to_owned()),
            digest: None,
            ..self.clone()
        })
    }

    /// The same repository with `digest` (and no tag).
    pub fn with_digest(&self, digest: &str) -> Result<Reference, ReferenceError> {
        check_digest(digest)?;
        Ok(Reference {
            tag: None,
            digest: Some(digest.to_owned()),
            ..self.clone()
        })
    }

    /// Drops the tag when a digest is present (a digest takes precedence, as in Docker's
    /// reference store).
    pub fn canonical_lookup(&self) -> Reference {
        if self.digest.is_some() {
            Reference {
                tag: None,
                ..self.clone()
            }
        } else {
            self.clone().with_default_tag()
        }
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }
    pub fn path(&self) -> &str {
        &self.path
    }
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
    /// Full normalised name without tag/digest: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
    /// Familiar name: `busybox`, `user/app`, `127.0.0.1:5000/app`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path
                .strip_prefix(OFFICIAL_PREFIX)
                .filter(|p| !p.contains('/'))
                .unwrap_or(&self.path)
                .to_owned()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }
    /// `busybox:latest`, `busybox@sha256:…` (or both), like Docker's `FamiliarString`.
    pub fn familiar(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
        s
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    #[test]
    fn valid_references_normalise_like_docker() {
        // input, full normalised string, familiar string
        let dig = format!("busybox@{D}");
        let both = format!("localhost:5000/a/b:v1@{D}");
        let table: Vec<(&str, String, String)> = vec![
            (
                "busybox",
                "docker.io/library/busybox".into(),
                "busybox".into(),
            ),
            (
                "busybox:1.36",
                "docker.io/library/busybox:1.36".into(),
                "busybox:1.36".into(),
            ),
            (
                "library/busybox",
                "docker.io/library/busybox".into(),
                "busybox".into(),
            ),
            (
                "docker.io/busybox",
                "docker.io/library/busybox".into(),
                "busybox".into(),
            ),
            (
                "index.docker.io/library/busybox:x",
                "docker.io/library/busybox:x".into(),
                "busybox:x".into(),
            ),
            (
                "user/app:v1.0",
                "docker.io/user/app:v1.0".into(),
                "user/app:v1.0".into(),
            ),
            (
                "docker.io/library/a/b",
                "docker.io/library/a/b".into(),
                "library/a/b".into(),
            ),
            (
                "127.0.0.1:5000/echo_test",
                "127.0.0.1:5000/echo_test".into(),
                "127.0.0.1:5000/echo_test".into(),
            ),
            (
                "localhost/app",
                "localhost/app".into(),
                "localhost/app".into(),
            ),
            (
                "localhost:5000/app:Tag_1",
                "localhost:5000/app:Tag_1".into(),
                "localhost:5000/app:Tag_1".into(),
            ),
            (
                "gcr.io/project-id/node-app:0.2",
                "gcr.io/project-id/node-app:0.2".into(),
                "gcr.io/project-id/node-app:0.2".into(),
            ),
            (
                "Example.com/foo",
                "Example.com/foo".into(),
                "Example.com/foo".into(),
            ),
            ("[::1]/foo", "[::1]/foo".into(), "[::1]/foo".into()),
            (
                "[fe80::1]:5000/foo:t",
                "[fe80::1]:5000/foo:t".into(),
                "[fe80::1]:5000/foo:t".into(),
            ),
            (
                "a__b.c-d---e_f",
                "docker.io/library/a__b.c-d---e_f".into(),
                "a__b.c-d---e_f".into(),
            ),
            (
                "localhost:5000",
                "docker.io/library/localhost:5000".into(),
                "localhost:5000".into(),
            ),
            (
                dig.as_str(),
                format!("docker.io/library/{dig}"),
                dig.clone(),
            ),
            (both.as_str(), both.clone(), both.clone()),
            ("abcdef", "docker.io/library/abcdef".into(), "abcdef".into()),
        ];
        for (input, full, familiar) in table {
            let r = Reference::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar(), familiar, "{input}");
        }
        let r = Reference::parse_with_default_tag("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(
            (r.domain(), r.path(), r.tag()),
            ("docker.io", "library/busybox", Some("latest"))
        );
        assert_eq!(r.familiar_name(), "busybox");
        let r = Reference::parse_with_default_tag(&format!("busybox@{D}")).unwrap();
        assert_eq!((r.tag(), r.digest()), (None, Some(D)));
        let r = Reference::parse(&format!("busybox:1@{D}"))
            .unwrap()
            .canonical_lookup();
        assert_eq!(r.familiar(), format!("busybox@{D}"));
        assert!(Reference::parse(&format!("{}:{}", "a".repeat(200), "t".repeat(128))).is_ok());
    }

    #[test]
    fn invalid_references_fail_with_dockers_messages() {
        use ReferenceError as E;
        let long_tag = format!("a:{}", "t".repeat(129));
        let too_long = "a/".repeat(130) + "a";
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let table: Vec<(&str, E)> = vec![
            ("", E::Format),
            (":tag", E::Format),
            ("busybox:", E::Format),
            ("bad name", E::Format),
            ("a//b", E::Format),
            ("-a", E::Format),
            ("a-", E::Format),
            ("a..b", E::Format),
            ("a._b", E::Format),
            ("a___b", E::Format),
            ("x:-tag", E::Format),
            ("x:.tag", E::Format),
            ("a:b:c", E::Format),
            ("busybox:a/b", E::Format),
            ("-host.io/a", E::Format),
            ("host.io:port/a", E::Format),
            ("[::1/a", E::Format),
            ("a@sha256:xyz", E::Format),
            ("a@", E::Format),
            (&long_tag, E::Format),
            (
                "UPPER",
                E::Uppercase {
                    remote: "library/UPPER".into(),
                },
            ),
            (
                "busyBox:latest",
                E::Uppercase {
                    remote: "library/busyBox".into(),
                },
            ),
            (
                "user/App",
                E::Uppercase {
                    remote: "user/App".into(),
                },
            ),
            (
                "gcr.io/Foo/bar",
                E::Uppercase {
                    remote: "Foo/bar".into(),
                },
            ),
            (hex, E::HexName { name: hex.into() }),
            (&too_long, E::TooLong),
            ("a@md5:0123456789abcdef0123456789abcdef", E::DigestAlgorithm),
            ("a@sha256:0123456789abcdef0123456789abcdef", E::DigestLength),
        ];
        for (input, want) in table {
            assert_eq!(Reference::parse(input), Err(want), "{input:?}");
        }
        let upper = format!("a@sha256:{}", hex.to_ascii_uppercase());
        assert_eq!(Reference::parse(&upper), Err(E::DigestFormat));
        assert_eq!(
            Reference::parse("UPPER").unwrap_err().to_string(),
            "invalid reference format: repository name (library/UPPER) must be lowercase"
        );
        assert_eq!(
            Reference::parse("a b").unwrap_err().to_string(),
            "invalid reference format"
        );
    }
}
