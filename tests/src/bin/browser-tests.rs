//! The browser tests: im-web's `wasm-bindgen-test` suite in headless Chromium, against the
//! reference livechat server and Mosquitto, which this command starts on free loopback ports
//! as the tests ask for them.
//!
//! ```text
//! cargo run -p im-tests --bin browser-tests [-- <test name filter>]
//! ```
//!
//! Needs the `wasm32-unknown-unknown` target, `wasm-bindgen-test-runner` of the workspace's
//! `wasm-bindgen` version, Chromium and its driver, and Mosquitto (`.ci/run` installs them all;
//! this command names what is missing). The page reaches the peers through the control socket
//! of `im_tests::browser`, whose address is compiled into the test (`IM_WEB_CONTROL`).

use std::path::PathBuf;
use std::process::{Command, ExitCode};

use im_tests::browser::Control;
use im_tests::peers::find_binary;

fn main() -> ExitCode {
    let filter: Vec<String> = std::env::args().skip(1).collect();
    let tools = match Tools::find() {
        Ok(tools) => tools,
        Err(missing) => {
            eprintln!("browser-tests: cannot run the browser tests:\n{missing}");
            return ExitCode::FAILURE;
        }
    };
    let control = match Control::start() {
        Ok(control) => control,
        Err(e) => {
            eprintln!("browser-tests: cannot start the control socket: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("control socket for the page's tests: {}", control.url());
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(env!("CARGO"))
        .current_dir(&workspace)
        .args([
            "test",
            "-p",
            "im-web",
            "--target",
            "wasm32-unknown-unknown",
            "--",
        ])
        .args(&filter)
        .env("IM_WEB_CONTROL", control.url())
        .env(
            "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
            &tools.test_runner,
        )
        .env("CHROMEDRIVER", &tools.chromedriver)
        // The page's tests wait for reconnects; the runner's default of 20 s is tight on a
        // busy 2-core machine.
        .env("WASM_BINDGEN_TEST_TIMEOUT", "180")
        .status();
    drop(control);
    match status {
        Ok(status) if status.success() => ExitCode::SUCCESS,
        Ok(status) => {
            eprintln!("browser-tests: the browser suite failed ({status})");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("browser-tests: cannot run cargo: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Tools {
    test_runner: PathBuf,
    chromedriver: PathBuf,
}

impl Tools {
    /// Every tool the suite needs, or what to install for each one missing.
    fn find() -> Result<Tools, String> {
        let mut missing = Vec::new();
        let wanted = wasm_bindgen_version();
        let test_runner = find_binary("wasm-bindgen-test-runner").or_else(|| {
            let home = std::env::var_os("CARGO_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
            Some(home.join("bin/wasm-bindgen-test-runner")).filter(|p| p.is_file())
        });
        match &test_runner {
            None => missing.push(format!(
                "  wasm-bindgen-test-runner: cargo install wasm-bindgen-cli --version {wanted}"
            )),
            Some(runner) => {
                let out = Command::new(runner).arg("--version").output();
                let version = out
                    .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
                    .unwrap_or_default();
                if !version.ends_with(&wanted) {
                    missing.push(format!(
                        "  {} is {version:?}, the workspace's wasm-bindgen is {wanted}: \
                         cargo install wasm-bindgen-cli --version {wanted} --force",
                        runner.display()
                    ));
                }
            }
        }
        let chromedriver = std::env::var_os("CHROMEDRIVER")
            .map(PathBuf::from)
            .or_else(|| find_binary("chromedriver"));
        if chromedriver.is_none() {
            missing.push("  chromedriver: apt-get install chromium chromium-driver".into());
        }
        if find_binary("chromium").is_none() && find_binary("google-chrome").is_none() {
            missing.push("  a Chromium: apt-get install chromium".into());
        }
        if find_binary("mosquitto").is_none() {
            missing.push("  mosquitto: apt-get install mosquitto".into());
        }
        let targets = Command::new("rustup")
            .args(["target", "list", "--installed"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        if !targets.contains("wasm32-unknown-unknown") {
            missing.push("  the wasm32 target: rustup target add wasm32-unknown-unknown".into());
        }
        match (test_runner, chromedriver, missing.is_empty()) {
            (Some(test_runner), Some(chromedriver), true) => Ok(Tools {
                test_runner,
                chromedriver,
            }),
            _ => Err(missing.join("\n")),
        }
    }
}

/// The `wasm-bindgen` version in the workspace's lock file: the test runner must be the same.
fn wasm_bindgen_version() -> String {
    let lock = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../Cargo.lock");
    let text = std::fs::read_to_string(lock).unwrap_or_default();
    text.split("[[package]]")
        .find(|p| p.contains("name = \"wasm-bindgen\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = ")))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_else(|| "(not in Cargo.lock)".into())
}
