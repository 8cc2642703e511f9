//! Resolves `--user` (`name`, `uid`, `name:group`, `uid:gid`) against the container's own
//! /etc/passwd and /etc/group, read inside the rootfs without following links out of it.
use std::path::Path;

use crate::fsutil::read_in_root;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    pub additional_gids: Vec<u32>,
    pub home: String,
}

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entries in passwd file")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entries in group file")]
    NoGroup(String),
    #[error("reading {path}")]
    Read {
        path: &'static str,
        #[source]
        source: std::io::Error,
    },
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

fn parse_passwd(s: &str) -> Vec<Passwd> {
    s.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 4 {
                return None;
            }
            Some(Passwd {
                name: f[0].to_owned(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f.get(5).copied().unwrap_or("/").to_owned(),
            })
        })
        .collect()
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

fn parse_group(s: &str) -> Vec<Group> {
    s.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            if f.len() < 3 {
                return None;
            }
            Some(Group {
                name: f[0].to_owned(),
                gid: f[2].parse().ok()?,
                members: f
                    .get(3)
                    .map(|m| {
                        m.split(',')
                            .filter(|x| !x.is_empty())
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// Resolves `spec` (empty = root) inside `rootfs`, plus the `group_add` extra groups.
pub fn resolve(rootfs: &Path, spec: &str, group_add: &[String]) -> Result<ExecUser, UserError> {
    let passwd = read_in_root(rootfs, "/etc/passwd").map_err(|source| UserError::Read {
        path: "/etc/passwd",
        source,
    })?;
    let group = read_in_root(rootfs, "/etc/group").map_err(|source| UserError::Read {
        path: "/etc/group",
        source,
    })?;
    resolve_from(
        passwd.as_deref().unwrap_or(""),
        group.as_deref().unwrap_or(""),
        spec,
        group_add,
    )
}

pub fn resolve_from(
    passwd: &str,
    group: &str,
    spec: &str,
    group_add: &[String],
) -> Result<ExecUser, UserError> {
    let users = parse_passwd(passwd);
    let groups = parse_group(group);
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };
    let entry = users.iter().find(|p| p.name == user_part).or_else(|| {
        user_part
            .parse::<u32>()
            .ok()
            .and_then(|uid| users.iter().find(|p| p.uid == uid))
    });
    let (uid, mut gid, home, name) = match (entry, user_part.parse::<u32>()) {
        (Some(p), _) => (p.uid, p.gid, p.home.clone(), Some(p.name.clone())),
        (None, Ok(uid)) => (uid, 0, "/".to_owned(), None),
        (None, Err(_)) => return Err(UserError::NoUser(user_part.to_owned())),
    };
    let lookup_group = |g: &str| -> Result<u32, UserError> {
        if let Some(gr) = groups.iter().find(|gr| gr.name == g) {
            return Ok(gr.gid);
        }
        g.parse::<u32>()
            .map_err(|_| UserError::NoGroup(g.to_owned()))
    };
    if let Some(g) = group_part.filter(|g| !g.is_empty()) {
        gid = lookup_group(g)?;
    }
    // As Docker 20.10: the primary group first, then the groups that list the user (only
    // when no group was named), then --group-add.
    let mut additional = vec![gid];
    if group_part.is_none() {
        if let Some(name) = &name {
            for gr in &groups {
                if gr.members.iter().any(|m| m == name) && !additional.contains(&gr.gid) {
                    additional.push(gr.gid);
                }
            }
        }
    }
    for g in group_add {
        let id = lookup_group(g)?;
        if !additional.contains(&id) {
            additional.push(id);
        }
    }
    Ok(ExecUser {
        uid,
        gid,
        additional_gids: additional,
        home,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\nweb:x:1000:1000::/home/web:/bin/sh\n";
    const GROUP: &str = "root:x:0:\nnogroup:x:65534:\nweb:x:1000:\nwheel:x:10:web\n";

    #[test]
    fn forms() {
        let r = resolve_from(PASSWD, GROUP, "", &[]).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (0, 0, "/root"));
        let r = resolve_from(PASSWD, GROUP, "nobody", &[]).unwrap();
        assert_eq!((r.uid, r.gid), (65534, 65534));
        let r = resolve_from(PASSWD, GROUP, "web", &[]).unwrap();
        assert_eq!(r.additional_gids, vec![1000, 10]);
        let r = resolve_from(PASSWD, GROUP, "1000:1000", &[]).unwrap();
        assert_eq!((r.uid, r.gid), (1000, 1000));
        let r = resolve_from(PASSWD, GROUP, "4242", &[]).unwrap();
        assert_eq!((r.uid, r.gid, r.home.as_str()), (4242, 0, "/"));
        let r = resolve_from(PASSWD, GROUP, "web:wheel", &["nogroup".into()]).unwrap();
        assert_eq!((r.gid, r.additional_gids.clone()), (10, vec![10, 65534]));
        assert!(matches!(
            resolve_from(PASSWD, GROUP, "ghost", &[]),
            Err(UserError::NoUser(_))
        ));
        assert!(matches!(
            resolve_from(PASSWD, GROUP, "web:ghosts", &[]),
            Err(UserError::NoGroup(_))
        ));
    }
}
