//! `docker top`: the host's `ps` (as moby runs it), filtered to the container's processes
//! (the PIDs in its cgroup).
use berth_api::models::ContainerTopResponse;
use berth_api::ApiError;

use super::control::cgroup_dir;
use super::Containers;

/// Keeps the rows of `ps` output whose PID column is one of `pids` (moby `parsePSOutput`).
pub fn filter_ps(output: &str, pids: &[u32]) -> Result<ContainerTopResponse, ApiError> {
    let mut lines = output.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .ok_or_else(|| ApiError::internal("ps printed nothing"))?;
    let titles: Vec<String> = header.split_whitespace().map(str::to_owned).collect();
    let pid_col = titles
        .iter()
        .position(|t| t == "PID")
        .ok_or_else(|| ApiError::invalid("Couldn't find PID field in ps output"))?;
    let mut processes = Vec::new();
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_col).and_then(|p| p.parse::<u32>().ok()) else {
            return Err(ApiError::internal(format!(
                "unexpected pid '{}' in ps output",
                fields.get(pid_col).unwrap_or(&"")
            )));
        };
        if !pids.contains(&pid) {
            continue;
        }
        // The last title takes the rest of the line (the command with its spaces).
        let mut row: Vec<String> = fields
            .iter()
            .take(titles.len() - 1)
            .map(|s| (*s).to_owned())
            .collect();
        if fields.len() >= titles.len() {
            row.push(fields[titles.len() - 1..].join(" "));
        }
        processes.push(row);
    }
    Ok(ContainerTopResponse {
        titles: Some(titles),
        processes: Some(processes),
    })
}

impl Containers {
    pub async fn top_container(
        &self,
        key: &str,
        ps_args: Option<String>,
    ) -> Result<ContainerTopResponse, ApiError> {
        let c = self.get(key)?;
        let rec = c.snapshot();
        if !rec.state.status.is_running() {
            return Err(ApiError::conflict(format!(
                "Container {} is not running",
                rec.id
            )));
        }
        let procs = cgroup_dir(&rec, "pids").join("cgroup.procs");
        let pids: Vec<u32> = tokio::fs::read_to_string(&procs)
            .await
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    // Exited a moment ago: the cgroup went before the exit was recorded.
                    ApiError::conflict(format!("Container {} is not running", rec.id))
                } else {
                    ApiError::internal(format!("reading {}: {e}", procs.display()))
                }
            })?
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect();
        let args = ps_args
            .filter(|a| !a.trim().is_empty())
            .unwrap_or_else(|| "-ef".into());
        let out = tokio::process::Command::new("ps")
            .args(args.split_whitespace())
            .output()
            .await
            .map_err(|e| ApiError::internal(format!("running ps: {e}")))?;
        if !out.status.success() {
            return Err(ApiError::internal(format!(
                "ps: {}",
                String::from_utf8_lossy(if out.stderr.is_empty() {
                    &out.stdout
                } else {
                    &out.stderr
                })
                .trim()
            )));
        }
        filter_ps(&String::from_utf8_lossy(&out.stdout), &pids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_container_rows_and_whole_commands() {
        let out = "UID   PID  PPID  C STIME TTY  TIME     CMD\nroot  1    0     0 10:00 ?    00:00:01 /sbin/init\nroot  42   1     0 10:01 ?    00:00:00 sleep 1000 now\n";
        let r = filter_ps(out, &[42]).unwrap();
        assert_eq!(
            r.titles.unwrap(),
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(
            r.processes.unwrap(),
            vec![vec![
                "root",
                "42",
                "1",
                "0",
                "10:01",
                "?",
                "00:00:00",
                "sleep 1000 now"
            ]]
        );
        assert!(filter_ps("USER COMMAND\nroot x\n", &[1]).is_err());
    }
}
