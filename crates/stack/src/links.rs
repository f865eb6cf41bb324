//! What ties a stack's processes together: the realtime cap counters every process maps, and
//! the parent's private REST/Auth listeners the other workers forward to.

use crate::config::StackConfig;
use crate::realtime::region::{CounterRegion, SharedCounters};
use crate::server::StackError;
use crate::workers;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

/// The parent's private REST/Auth listeners the other workers forward to.
pub(crate) struct Internal {
    pub(crate) http1: TcpListener,
    pub(crate) h2: TcpListener,
}

impl Internal {
    pub(crate) async fn bind(host: std::net::IpAddr) -> Result<Internal, StackError> {
        let addr = SocketAddr::new(host, 0);
        let bind = || async {
            TcpListener::bind(addr)
                .await
                .map_err(|source| StackError::Bind { addr, source })
        };
        Ok(Internal {
            http1: bind().await?,
            h2: bind().await?,
        })
    }

    fn addrs(&self) -> Result<(SocketAddr, SocketAddr), StackError> {
        let addr = |l: &TcpListener| {
            l.local_addr().map_err(|source| StackError::Bind {
                addr: SocketAddr::from(([127, 0, 0, 1], 0)),
                source,
            })
        };
        Ok((addr(&self.http1)?, addr(&self.h2)?))
    }
}

/// The realtime cap counters of this process: mapped from the parent's file in a worker, a
/// fresh file the workers will map in a multi-process parent, private otherwise.
pub(crate) struct CapCounters {
    pub(crate) shared: SharedCounters,
    /// The parent's file, removed when the stack stops (workers have mapped it by then).
    file: Option<tempfile::NamedTempFile>,
}

impl CapCounters {
    pub(crate) fn for_process(config: &StackConfig) -> Result<CapCounters, StackError> {
        let error = |path: &std::path::Path, source| StackError::Counters {
            path: path.display().to_string(),
            source,
        };
        if let Some(link) = &config.worker_link {
            let region = CounterRegion::open(&link.counters_path)
                .map_err(|e| error(&link.counters_path, e))?;
            let shared = SharedCounters::new(Arc::new(region), link.slot);
            return Ok(CapCounters { shared, file: None });
        }
        if config.workers < 2 {
            let shared = SharedCounters::private().map_err(|e| error("memory".as_ref(), e))?;
            return Ok(CapCounters { shared, file: None });
        }
        let dir = std::env::temp_dir();
        let file = tempfile::Builder::new()
            .prefix("syncstorm-caps-")
            .tempfile_in(&dir)
            .map_err(|e| error(&dir, e))?;
        let region = CounterRegion::create_in(file.as_file()).map_err(|e| error(file.path(), e))?;
        let shared = SharedCounters::new(Arc::new(region), 0);
        Ok(CapCounters {
            shared,
            file: Some(file),
        })
    }

    pub(crate) fn parent_link<'a>(
        &'a self,
        internal: &Internal,
    ) -> Result<workers::ParentLink<'a>, StackError> {
        let file = self.file.as_ref().ok_or_else(|| {
            StackError::Config("only a multi-process stack's parent starts workers".into())
        })?;
        let (upstream_http1, upstream_h2) = internal.addrs()?;
        Ok(workers::ParentLink {
            upstream_http1,
            upstream_h2,
            counters: &self.shared,
            counters_path: file.path(),
            realtime_capture: None,
        })
    }
}
