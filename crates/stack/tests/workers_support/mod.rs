//! Shared by the multi-process tests: a stack of two worker processes (this crate's
//! `stack-worker` binary) on the shared test cluster, and readers for its answers.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use syncstorm_plans::SupabasePlan;
use syncstorm_stack::{RunningStack, Stack, StackConfig};
use tokio_util::sync::CancellationToken;

/// A stack of two processes on the `unlimited` plan whose configuration `tweak` adjusts.
pub async fn two_workers(tweak: impl FnOnce(&mut StackConfig)) -> RunningStack {
    let mut config = StackConfig::new(SupabasePlan::preset("unlimited").unwrap());
    config.workers = 2;
    config.worker_program = Some(PathBuf::from(env!("CARGO_BIN_EXE_stack-worker")));
    tweak(&mut config);
    let stack = Stack::start_for_tests(config, CancellationToken::new())
        .await
        .expect("a two-worker stack starts");
    assert_eq!(stack.worker_urls.len(), 2);
    stack
}

/// The Realtime websocket URL of worker `base` (an `http://` URL) with `key`.
pub fn websocket(base: &str, key: &str) -> String {
    let ws = base.replace("http://", "ws://");
    format!("{ws}/realtime/v1/websocket?apikey={key}&vsn=1.0.0")
}

/// One metric's value on a Prometheus page (`name` with its labels, as printed).
pub fn metric(page: &str, name: &str) -> Option<f64> {
    let prefix = format!("{name} ");
    page.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .and_then(|v| v.trim().parse().ok())
}

pub async fn metrics_page(url: &str) -> String {
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// Polls `url`'s metrics until `ready` holds (at most ~10 s); returns that page.
pub async fn metrics_when(url: &str, ready: impl Fn(&str) -> bool) -> String {
    for _ in 0..500 {
        let page = metrics_page(url).await;
        if ready(&page) {
            return page;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{url} never showed the expected figures");
}

/// What a client sees of a response: status, every header but `date`, body bytes.
#[derive(Debug, PartialEq, Eq)]
pub struct Seen {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

pub async fn seen(response: reqwest::Response) -> Seen {
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .filter(|(k, _)| k.as_str() != "date")
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_string()))
        .collect();
    let body = response.bytes().await.unwrap().to_vec();
    Seen {
        status,
        headers,
        body,
    }
}
