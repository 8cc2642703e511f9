//! `berth cp`: docker's `cp` (container ↔ host, `-` for a tar on stdin/stdout, `-a`, `-L`)
//! and, beyond Docker, container → container (`berth cp a:/p b:/q`).
use std::io::{Read, Write};
use std::path::{Component, Path, PathBuf};

use anyhow::{bail, Context, Result};
use base64::Engine;
use clap::Args;
use http_body_util::BodyExt;
use hyper::Method;

use crate::client::Client;

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short = 'a', long = "archive")]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long = "follow-link")]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short = 'q', long)]
    pub quiet: bool,
    #[arg(value_name = "SRC_PATH")]
    pub src: String,
    #[arg(value_name = "DEST_PATH")]
    pub dst: String,
}

/// `CONTAINER:PATH` or a local path (docker's `splitCpArg`).
#[derive(Debug, Clone, PartialEq)]
enum Loc {
    Local(String),
    Container(String, String),
}

fn split_arg(s: &str) -> Loc {
    if s.starts_with('/') || s.starts_with('.') {
        return Loc::Local(s.to_owned());
    }
    match s.split_once(':') {
        Some((c, p)) if !c.is_empty() => Loc::Container(c.to_owned(), p.to_owned()),
        _ => Loc::Local(s.to_owned()),
    }
}

#[derive(Debug, Clone, Default, serde::Deserialize)]
struct PathStat {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: u32,
    #[serde(default, rename = "linkTarget")]
    link_target: String,
}

const MODE_DIR: u32 = 1 << 31;
const MODE_SYMLINK: u32 = 1 << 27;

impl PathStat {
    fn is_dir(&self) -> bool {
        self.mode & MODE_DIR != 0
    }
    fn is_link(&self) -> bool {
        self.mode & MODE_SYMLINK != 0
    }
}

fn q(path: &str) -> Vec<(&'static str, String)> {
    vec![("path", path.to_owned())]
}

fn decode_stat(h: Option<&hyper::header::HeaderValue>) -> Result<PathStat> {
    let v = h.context("no X-Docker-Container-Path-Stat header")?;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v.as_bytes())
        .context("decoding the path stat")?;
    Ok(serde_json::from_slice(&raw)?)
}

/// The stat of a container path; `None` when it does not exist (the container must).
async fn stat(client: &Client, ctr: &str, path: &str) -> Result<Option<PathStat>> {
    // A missing container is told by inspect, with the daemon's message.
    client.get(&format!("/containers/{ctr}/json"), &[]).await?;
    match client
        .stream(
            Method::HEAD,
            &format!("/containers/{ctr}/archive"),
            &q(path),
            None,
        )
        .await
    {
        Ok(resp) => Ok(Some(decode_stat(
            resp.headers().get("X-Docker-Container-Path-Stat"),
        )?)),
        Err(e) if crate::client::api_error(&e).is_some_and(|a| a.is_not_found()) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Parent and base of a container or local path (`/a/b/` → (`/a`, `b`)).
fn split_path(p: &str) -> (String, String) {
    let t = p.trim_end_matches('/');
    match t.rfind('/') {
        Some(0) => ("/".into(), t[1..].to_owned()),
        Some(i) => (t[..i].to_owned(), t[i + 1..].to_owned()),
        None => (".".into(), t.to_owned()),
    }
}

fn wants_contents(p: &str) -> bool {
    p.ends_with("/.") || p == "."
}

/// Rewrites a tar whose entries start with one root name: to `new_root` (Some) or to the
/// root's contents (None). A `/.` source is archived as `./` then its entries, which have
/// no root to strip.
fn reroot(tar: &[u8], new_root: Option<&str>) -> Result<Vec<u8>> {
    let mut out = tar::Builder::new(Vec::new());
    let mut a = tar::Archive::new(tar);
    let mut dot_root = false;
    // Maps an entry path (without its root) to its new name; None for the root itself.
    let rename = |rest: PathBuf| -> Option<PathBuf> {
        match (new_root, rest.as_os_str().is_empty()) {
            (Some(r), true) => Some(PathBuf::from(r)),
            (Some(r), false) => Some(Path::new(r).join(rest)),
            (None, true) => None,
            (None, false) => Some(rest),
        }
    };
    for (i, e) in a.entries()?.enumerate() {
        let mut e = e?;
        let path = e.path()?.into_owned();
        let comps: Vec<Component> = path
            .components()
            .filter(|c| !matches!(c, Component::CurDir))
            .collect();
        if i == 0 && comps.is_empty() {
            dot_root = true;
        }
        let strip = |cs: &[Component]| -> PathBuf {
            if dot_root {
                cs.iter().collect()
            } else {
                cs.iter().skip(1).collect()
            }
        };
        let Some(name) = rename(strip(&comps)) else {
            continue;
        };
        let mut h = e.header().clone();
        let link = e.link_name()?.map(|l| l.into_owned());
        match (link, h.entry_type()) {
            (Some(l), tar::EntryType::Link) => {
                let lc: Vec<Component> = l
                    .components()
                    .filter(|c| !matches!(c, Component::CurDir))
                    .collect();
                let target = rename(strip(&lc)).unwrap_or_default();
                out.append_link(&mut h, &name, &target)?;
            }
            (Some(l), _) => out.append_link(&mut h, &name, &l)?,
            (None, _) => {
                let mut data = Vec::new();
                e.read_to_end(&mut data)?;
                let n = if h.entry_type() == tar::EntryType::Directory {
                    PathBuf::from(format!("{}/", name.display()))
                } else {
                    name
                };
                out.append_data(&mut h, &n, &data[..])?;
            }
        }
    }
    Ok(out.into_inner()?)
}

async fn get_tar(client: &Client, ctr: &str, path: &str) -> Result<(PathStat, Vec<u8>)> {
    let resp = client
        .stream(
            Method::GET,
            &format!("/containers/{ctr}/archive"),
            &q(path),
            None,
        )
        .await?;
    let st = decode_stat(resp.headers().get("X-Docker-Container-Path-Stat"))?;
    let body = resp.into_body().collect().await?.to_bytes();
    Ok((st, body.to_vec()))
}

async fn put_tar(client: &Client, ctr: &str, dir: &str, tar: Vec<u8>, archive: bool) -> Result<()> {
    let mut query = q(dir);
    query.push(("noOverwriteDirNonDir", "true".into()));
    if archive {
        query.push(("copyUIDGID", "true".into()));
    }
    client
        .request(
            Method::PUT,
            &format!("/containers/{ctr}/archive"),
            &query,
            Some((tar, "application/x-tar")),
        )
        .await?;
    Ok(())
}

/// A container source: its stat and tar (entries rooted at the source's base name), with
/// `-L` following a final link as docker does.
async fn fetch_source(
    client: &Client,
    ctr: &str,
    path: &str,
    follow: bool,
) -> Result<(PathStat, Vec<u8>)> {
    let mut src = path.to_owned();
    let mut rename = None;
    if follow {
        if let Some(st) = stat(client, ctr, path).await? {
            if st.is_link() && !st.link_target.is_empty() {
                rename = Some(split_path(path).1);
                src = st.link_target.clone();
            }
        }
    }
    let (st, tar) = get_tar(client, ctr, &src).await?;
    match rename {
        Some(name) => Ok((st, reroot(&tar, Some(&name))?)),
        None => Ok((st, tar)),
    }
}

/// Where a source of kind `src_is_dir` lands in a container destination: the directory to
/// extract into and the root name for the entries (None: the source's contents).
async fn container_target(
    client: &Client,
    ctr: &str,
    dst: &str,
    src_is_dir: bool,
    src_contents: bool,
    src_base: &str,
) -> Result<(String, Option<String>)> {
    match stat(client, ctr, dst).await? {
        Some(st)
            if st.is_dir()
                || (st.is_link() && {
                    let t = stat(client, ctr, &st.link_target).await?;
                    t.is_some_and(|t| t.is_dir())
                }) =>
        {
            Ok((
                dst.to_owned(),
                if src_contents {
                    None
                } else {
                    Some(src_base.to_owned())
                },
            ))
        }
        Some(_) if src_is_dir => bail!("cannot copy directory"),
        Some(_) => {
            let (parent, base) = split_path(dst);
            Ok((parent, Some(base)))
        }
        None if dst.ends_with('/') => bail!("no such directory"),
        None => {
            let (parent, base) = split_path(dst);
            Ok((parent, Some(base)))
        }
    }
}

/// A local file or directory as a tar rooted at `root`.
fn local_tar(src: &Path, root: Option<&str>, follow: bool) -> Result<Vec<u8>> {
    let mut b = tar::Builder::new(Vec::new());
    b.follow_symlinks(false);
    let meta = if follow {
        std::fs::metadata(src)
    } else {
        std::fs::symlink_metadata(src)
    }
    .with_context(|| format!("lstat {}: no such file or directory", src.display()))?;
    let real = if follow && std::fs::symlink_metadata(src)?.file_type().is_symlink() {
        std::fs::canonicalize(src)?
    } else {
        src.to_owned()
    };
    match root {
        Some(r) if meta.is_dir() => b.append_dir_all(r, &real)?,
        Some(r) => b.append_path_with_name(&real, r)?,
        None => {
            for e in std::fs::read_dir(&real)? {
                let e = e?;
                let p = e.path();
                let name = e.file_name();
                if e.file_type()?.is_dir() {
                    b.append_dir_all(&name, &p)?;
                } else {
                    b.append_path_with_name(&p, &name)?;
                }
            }
        }
    }
    Ok(b.into_inner()?)
}

/// Extracts a tar rooted at the source's name to a local destination, docker's rules.
fn extract_local(tar: &[u8], st: &PathStat, src: &str, dst: &str) -> Result<()> {
    let d = Path::new(dst);
    let (dir, root): (PathBuf, Option<String>) = match std::fs::metadata(d) {
        Ok(m) if m.is_dir() => (
            d.to_owned(),
            if wants_contents(src) {
                None
            } else {
                Some(st.name.clone())
            },
        ),
        Ok(_) if st.is_dir() => bail!("cannot copy directory"),
        Ok(_) => (
            d.parent().map(Path::to_owned).unwrap_or_else(|| ".".into()),
            Some(
                d.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned(),
            ),
        ),
        Err(_) if dst.ends_with('/') => bail!("no such directory"),
        Err(_) => {
            let parent = match d.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_owned(),
                _ => PathBuf::from("."),
            };
            if !parent.is_dir() {
                bail!(
                    "invalid output path: directory {:?} does not exist",
                    parent.display().to_string()
                );
            }
            (
                parent,
                Some(
                    d.file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .into_owned(),
                ),
            )
        }
    };
    let tar = reroot(tar, root.as_deref())?;
    let mut a = tar::Archive::new(&tar[..]);
    a.set_preserve_permissions(true);
    a.set_preserve_ownerships(true);
    a.set_preserve_mtime(true);
    a.set_overwrite(true);
    for e in a.entries()? {
        let mut e = e?;
        let rel = e.path()?.into_owned();
        if rel
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
        {
            bail!("refusing archive entry {}", rel.display());
        }
        let target = dir.join(&rel);
        if let Ok(m) = std::fs::symlink_metadata(&target) {
            if !m.is_dir() {
                std::fs::remove_file(&target)?;
            }
        }
        e.unpack_in(&dir)?;
    }
    Ok(())
}

pub async fn cp(client: Client, a: CpArgs) -> Result<i32> {
    match (split_arg(&a.src), split_arg(&a.dst)) {
        (Loc::Local(_), Loc::Local(_)) => {
            bail!("must specify at least one container source")
        }
        (Loc::Container(c, p), Loc::Local(dst)) => {
            let (st, tar) = fetch_source(&client, &c, &p, a.follow_link).await?;
            if dst == "-" {
                std::io::stdout().write_all(&tar)?;
                return Ok(0);
            }
            extract_local(&tar, &st, &p, &dst)?;
            Ok(0)
        }
        (Loc::Local(src), Loc::Container(c, dst)) => {
            if src == "-" {
                let mut tar = Vec::new();
                std::io::stdin().read_to_end(&mut tar)?;
                put_tar(&client, &c, &dst, tar, a.archive).await?;
                return Ok(0);
            }
            let sp = Path::new(&src);
            let meta = std::fs::symlink_metadata(sp)
                .map_err(|_| anyhow::anyhow!("lstat {src}: no such file or directory"))?;
            let is_dir = if a.follow_link {
                std::fs::metadata(sp).map(|m| m.is_dir()).unwrap_or(false)
            } else {
                meta.is_dir()
            };
            let base = split_path(&src).1;
            let (dir, root) =
                container_target(&client, &c, &dst, is_dir, wants_contents(&src), &base).await?;
            let tar = local_tar(sp, root.as_deref(), a.follow_link)?;
            put_tar(&client, &c, &dir, tar, a.archive).await?;
            Ok(0)
        }
        (Loc::Container(c1, p1), Loc::Container(c2, p2)) => {
            let (st, tar) = fetch_source(&client, &c1, &p1, a.follow_link).await?;
            let (dir, root) = container_target(
                &client,
                &c2,
                &p2,
                st.is_dir(),
                wants_contents(&p1),
                &st.name,
            )
            .await?;
            let tar = reroot(&tar, root.as_deref())?;
            put_tar(&client, &c2, &dir, tar, a.archive).await?;
            Ok(0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args() {
        assert_eq!(split_arg("c:/x"), Loc::Container("c".into(), "/x".into()));
        assert_eq!(split_arg("/a:b"), Loc::Local("/a:b".into()));
        assert_eq!(split_arg("./c:d"), Loc::Local("./c:d".into()));
        assert_eq!(split_arg("-"), Loc::Local("-".into()));
    }

    #[test]
    fn reroots() {
        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_size(0);
        b.append_data(&mut h, "d/", std::io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_size(1);
        b.append_data(&mut h, "d/f", &b"x"[..]).unwrap();
        let t = b.into_inner().unwrap();
        let names = |t: &[u8]| -> Vec<String> {
            tar::Archive::new(t)
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().display().to_string())
                .collect()
        };
        assert_eq!(names(&reroot(&t, Some("q")).unwrap()), ["q/", "q/f"]);
        assert_eq!(names(&reroot(&t, None).unwrap()), ["f"]);
    }
}
