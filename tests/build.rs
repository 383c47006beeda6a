//! Which real peers this machine has, decided when the tests are built: a test whose peer is
//! missing is compiled `#[ignore]`d with the reason (`cfg(im_missing_<peer>)`), so a developer
//! without, say, node sees "ignored" and why, never a test that passed without running. Under
//! CI (`CI=true`) nothing is ignored: a missing peer fails its tests.

use std::path::PathBuf;

/// cfg name → the binary it stands for.
const PEERS: [(&str, &str); 5] = [
    ("im_missing_node", "node"),
    ("im_missing_npm", "npm"),
    ("im_missing_mosquitto", "mosquitto"),
    ("im_missing_nats_server", "nats-server"),
    ("im_missing_redis_server", "redis-server"),
];

fn main() {
    println!("cargo::rerun-if-env-changed=PATH");
    println!("cargo::rerun-if-env-changed=CI");
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    for (cfg, binary) in PEERS {
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        match find(binary) {
            // Rebuilt when the binary changes or goes away.
            Some(path) => println!("cargo::rerun-if-changed={}", path.display()),
            None => {
                // A path that does not exist makes cargo run this script on every build, so an
                // install is noticed.
                println!("cargo::rerun-if-changed=/usr/bin/{binary}");
                if !ci {
                    println!("cargo::rustc-cfg={cfg}");
                    println!("cargo::warning={binary} is not installed: the tests that need it are built ignored");
                }
            }
        }
    }
}

/// The same search as `im_tests::peers::find_binary`: the PATH, then Debian's sbin folders.
fn find(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}
