//! `apnsim serve --threads N` (and its twin APNSIM_THREADS) sizes the runtime: serve reports N
//! worker threads (read from the runtime itself); 0 is refused before anything starts.

use tokio::io::{AsyncBufReadExt, BufReader};

async fn workers_with(args: &[&str], env: Option<(&str, &str)>) -> String {
    let dir = std::env::temp_dir().join(format!(
        "apnsim-threads-{}-{}",
        std::process::id(),
        args.join("-") + env.map_or("", |e| e.1)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_apnsim"));
    cmd.arg("serve")
        .args(["--certs", &dir.join("certs").display().to_string()]);
    for port in [
        "--legacy-port",
        "--feedback-port",
        "--sandbox-legacy-port",
        "--sandbox-feedback-port",
        "--sandbox-http2-port",
        "--manage-broadcast-port",
        "--sandbox-manage-broadcast-port",
        "--control-port",
    ] {
        cmd.args([port, "off"]);
    }
    cmd.args(["--http2-port", "0"]).args(args);
    cmd.env_remove("APNSIM_THREADS");
    if let Some((k, v)) = env {
        cmd.env(k, v);
    }
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let found = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.strip_prefix("apnsim runtime: ") {
                return rest.to_string();
            }
        }
        panic!("serve ended without reporting its runtime");
    })
    .await
    .expect("serve reports its runtime");
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
    found
}

#[tokio::test]
async fn threads_flag_and_variable_size_the_runtime() {
    assert_eq!(
        workers_with(&["--threads", "1"], None).await,
        "1 worker threads"
    );
    assert_eq!(
        workers_with(&["--threads", "3"], None).await,
        "3 worker threads"
    );
    assert_eq!(
        workers_with(&[], Some(("APNSIM_THREADS", "2"))).await,
        "2 worker threads"
    );
}

#[tokio::test]
async fn zero_threads_is_refused() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_apnsim"))
        .args(["serve", "--threads", "0"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--threads"), "{err}");
}
