//! The same basics through bollard 0.19 (a typed Rust SDK): create/start/wait/logs/
//! inspect/list/remove, exec (with stdin), attach with a TTY, images.
use std::collections::HashMap;
use std::time::Duration;

use berth_e2e::*;
use bollard::container::LogOutput;
use bollard::errors::Error;
use bollard::exec::{StartExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, ContainerStateStatusEnum, ExecConfig, HostConfig};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, ListContainersOptionsBuilder,
    ListImagesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    RemoveImageOptionsBuilder, StartContainerOptions, TagImageOptionsBuilder, WaitContainerOptions,
};
use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;

fn body(cmd: &[&str]) -> ContainerCreateBody {
    ContainerCreateBody {
        image: Some("busybox".into()),
        cmd: Some(cmd.iter().map(|s| s.to_string()).collect()),
        host_config: Some(HostConfig {
            network_mode: Some("none".into()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The exit code from the wait stream (bollard turns non-zero codes into an error).
async fn wait_code(docker: &bollard::Docker, id: &str) -> i64 {
    let mut s = docker.wait_container(id, None::<WaitContainerOptions>);
    match s.next().await.expect("wait stream ended") {
        Ok(r) => r.status_code,
        Err(Error::DockerContainerWaitError { code, .. }) => code,
        Err(e) => panic!("wait: {e}"),
    }
}

async fn collect(
    mut s: impl futures_util::Stream<Item = Result<LogOutput, Error>> + Unpin,
) -> (String, String) {
    let (mut out, mut err) = (String::new(), String::new());
    while let Some(item) = s.next().await {
        match item.expect("stream item") {
            LogOutput::StdOut { message } | LogOutput::Console { message } => {
                out.push_str(&String::from_utf8_lossy(&message))
            }
            LogOutput::StdErr { message } => err.push_str(&String::from_utf8_lossy(&message)),
            LogOutput::StdIn { .. } => {}
        }
    }
    (out, err)
}

#[tokio::test]
async fn lifecycle_create_start_wait_logs_inspect_list_remove() {
    let Some(d) = setup() else { return };
    let docker = d.bollard();
    let v = docker.version().await.unwrap();
    assert_eq!(v.os.as_deref(), Some("linux"));

    let mut b = body(&[
        "sh",
        "-c",
        "echo out; sleep 0.1; echo err >&2; echo $GREETING; exit 3",
    ]);
    b.env = Some(vec!["GREETING=hello-bollard".into()]);
    b.labels = Some(HashMap::from([(
        "suite".to_string(),
        "bollard".to_string(),
    )]));
    let created = docker
        .create_container(
            Some(CreateContainerOptionsBuilder::new().name("bl1").build()),
            b,
        )
        .await
        .unwrap();
    assert_eq!(created.id.len(), 64);
    assert!(created.warnings.is_empty());

    let info = docker
        .inspect_container(
            "bl1",
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap();
    assert_eq!(
        info.state.as_ref().unwrap().status,
        Some(ContainerStateStatusEnum::CREATED)
    );
    assert_eq!(info.name.as_deref(), Some("/bl1"));

    docker
        .start_container("bl1", None::<StartContainerOptions>)
        .await
        .unwrap();
    assert_eq!(wait_code(&docker, "bl1").await, 3);

    let logs = docker.logs(
        "bl1",
        Some(LogsOptionsBuilder::new().stdout(true).stderr(true).build()),
    );
    let (out, err) = collect(Box::pin(logs)).await;
    assert_eq!(out, "out\nhello-bollard\n");
    assert_eq!(err, "err\n");

    let info = docker
        .inspect_container(
            &created.id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .unwrap();
    let state = info.state.unwrap();
    assert_eq!(state.status, Some(ContainerStateStatusEnum::EXITED));
    assert_eq!(state.exit_code, Some(3));
    assert_eq!(state.running, Some(false));
    assert!(info
        .config
        .unwrap()
        .env
        .unwrap()
        .contains(&"GREETING=hello-bollard".to_string()));

    let filters = HashMap::from([("label", vec!["suite=bollard"])]);
    let list = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::new()
                .all(true)
                .filters(&filters)
                .build(),
        ))
        .await
        .unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].id.as_deref(), Some(created.id.as_str()));
    assert_eq!(list[0].names.as_ref().unwrap(), &vec!["/bl1".to_string()]);
    let running = docker
        .list_containers(Some(ListContainersOptionsBuilder::new().build()))
        .await
        .unwrap();
    assert!(running.is_empty());

    docker
        .remove_container(
            "bl1",
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .unwrap();
    match docker
        .inspect_container(
            "bl1",
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
    {
        Err(Error::DockerResponseServerError {
            status_code: 404,
            message,
        }) => assert!(message.contains("No such container: bl1"), "{message}"),
        other => panic!("expected 404, got {other:?}"),
    }
    // Errors carry Docker's status codes.
    match docker
        .start_container("nosuch", None::<StartContainerOptions>)
        .await
    {
        Err(Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        other => panic!("expected 404, got {other:?}"),
    }
}

#[tokio::test]
async fn exec_through_the_api() {
    let Some(d) = setup() else { return };
    let docker = d.bollard();
    let id = docker
        .create_container(
            None::<bollard::query_parameters::CreateContainerOptions>,
            body(&["sleep", "1000"]),
        )
        .await
        .unwrap()
        .id;
    docker
        .start_container(&id, None::<StartContainerOptions>)
        .await
        .unwrap();

    let exec = docker
        .create_exec(
            &id,
            ExecConfig {
                cmd: Some(vec![
                    "sh".into(),
                    "-c".into(),
                    "echo hi; echo oops >&2; exit 2".into(),
                ]),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    match docker.start_exec(&exec.id, None).await.unwrap() {
        StartExecResults::Attached { output, .. } => {
            let (out, err) = collect(output).await;
            assert_eq!((out.as_str(), err.as_str()), ("hi\n", "oops\n"));
        }
        StartExecResults::Detached => panic!("exec detached"),
    }
    let ins = docker.inspect_exec(&exec.id).await.unwrap();
    assert_eq!(ins.exit_code, Some(2));
    assert_eq!(ins.running, Some(false));
    assert_eq!(ins.container_id.as_deref(), Some(id.as_str()));

    // stdin: written, then closed; the process sees EOF.
    let exec = docker
        .create_exec(
            &id,
            ExecConfig {
                cmd: Some(vec!["wc".into(), "-c".into()]),
                attach_stdin: Some(true),
                attach_stdout: Some(true),
                attach_stderr: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    match docker.start_exec(&exec.id, None).await.unwrap() {
        StartExecResults::Attached { output, mut input } => {
            input.write_all(b"12345").await.unwrap();
            input.shutdown().await.unwrap();
            let (out, _) = tokio::time::timeout(Duration::from_secs(20), collect(output))
                .await
                .expect("exec with stdin did not finish");
            assert_eq!(out.trim(), "5");
        }
        StartExecResults::Detached => panic!("exec detached"),
    }

    // A TTY exec.
    let exec = docker
        .create_exec(
            &id,
            ExecConfig {
                cmd: Some(vec!["tty".into()]),
                attach_stdout: Some(true),
                tty: Some(true),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    match docker
        .start_exec(
            &exec.id,
            Some(StartExecOptions {
                tty: true,
                ..Default::default()
            }),
        )
        .await
        .unwrap()
    {
        StartExecResults::Attached { output, .. } => {
            let (out, _) = collect(output).await;
            assert!(out.starts_with("/dev/pts/"), "{out:?}");
        }
        StartExecResults::Detached => panic!("exec detached"),
    }
    docker
        .remove_container(
            &id,
            Some(RemoveContainerOptionsBuilder::new().force(true).build()),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn attach_with_a_tty() {
    let Some(d) = setup() else { return };
    let docker = d.bollard();
    let mut b = body(&["sh"]);
    b.tty = Some(true);
    b.open_stdin = Some(true);
    b.attach_stdin = Some(true);
    b.attach_stdout = Some(true);
    let id = docker
        .create_container(None::<bollard::query_parameters::CreateContainerOptions>, b)
        .await
        .unwrap()
        .id;
    let att = docker
        .attach_container(
            &id,
            Some(
                AttachContainerOptionsBuilder::new()
                    .stdin(true)
                    .stdout(true)
                    .stderr(true)
                    .stream(true)
                    .build(),
            ),
        )
        .await
        .unwrap();
    docker
        .start_container(&id, None::<StartContainerOptions>)
        .await
        .unwrap();
    let mut input = att.input;
    let mut output = att.output;
    input
        .write_all(b"tty; echo hello-$((6*7))\n")
        .await
        .unwrap();
    let mut seen = String::new();
    let read = async {
        while let Some(item) = output.next().await {
            match item.unwrap() {
                LogOutput::Console { message } => seen.push_str(&String::from_utf8_lossy(&message)),
                other => panic!("a TTY stream must be raw, got {other:?}"),
            }
            if seen.contains("hello-42") {
                break;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), read)
        .await
        .unwrap_or_else(|_| panic!("no echo from the tty: {seen:?}"));
    assert!(seen.contains("/dev/pts/0"), "{seen:?}");
    // A pty turns \n into \r\n.
    assert!(seen.contains("hello-42\r\n"), "{seen:?}");
    input.write_all(b"exit 5\n").await.unwrap();
    assert_eq!(wait_code(&docker, &id).await, 5);
    docker
        .remove_container(
            &id,
            None::<bollard::query_parameters::RemoveContainerOptions>,
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn images_through_the_api() {
    let Some(d) = setup() else { return };
    let docker = d.bollard();
    let images = docker
        .list_images(Some(ListImagesOptionsBuilder::new().build()))
        .await
        .unwrap();
    assert_eq!(images.len(), 1);
    assert_eq!(images[0].repo_tags, vec!["busybox:latest".to_string()]);
    let id = images[0].id.clone();
    let img = docker.inspect_image("busybox").await.unwrap();
    assert_eq!(img.id.as_deref(), Some(id.as_str()));
    assert_eq!(img.os.as_deref(), Some("linux"));
    assert_eq!(img.config.unwrap().cmd, Some(vec!["sh".to_string()]));

    docker
        .tag_image(
            "busybox",
            Some(
                TagImageOptionsBuilder::new()
                    .repo("example/bb")
                    .tag("v2")
                    .build(),
            ),
        )
        .await
        .unwrap();
    let img = docker.inspect_image("example/bb:v2").await.unwrap();
    assert_eq!(img.id.as_deref(), Some(id.as_str()));
    let history = docker.image_history("busybox").await.unwrap();
    assert_eq!(history.len(), 1);
    let deleted = docker
        .remove_image(
            "example/bb:v2",
            None::<bollard::query_parameters::RemoveImageOptions>,
            None,
        )
        .await
        .unwrap();
    assert_eq!(deleted.len(), 1);
    assert_eq!(deleted[0].untagged.as_deref(), Some("example/bb:v2"));
    match docker
        .remove_image(
            "nosuch",
            Some(RemoveImageOptionsBuilder::new().build()),
            None,
        )
        .await
    {
        Err(Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        other => panic!("expected 404, got {other:?}"),
    }
}
