//! Starting the browser: check the database, load the model and dictionaries, bind, serve.

use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;

use saelab_interp::db::open::{explain, open, Access, ModelShape};
use tokio::sync::Semaphore;

use crate::database::catalog::Catalog;
use crate::database::pool::Pool;
use crate::error::{Result, ServeError};
use crate::live::Live;
use crate::options::Options;
use crate::router::router;
use crate::state::{AppState, Shared};

/// A server that has checked its database, loaded its model and bound its port.
pub struct Server {
    listener: TcpListener,
    state: Shared,
}

impl Server {
    pub fn bind(options: &Options) -> Result<Server> {
        let path = options.database.as_path();
        let (conn, info) = open(path, Access::ReadOnly)?;
        let catalog = Catalog::read(&conn).map_err(|e| explain(path, e))?;
        drop(conn);

        let spec = options
            .model
            .clone()
            .or(Some(info.model))
            .filter(|m| !m.is_empty());
        let model = saelab_model::load(spec.as_deref())?;
        info.model_shape
            .check(path, &model.name, ModelShape::of(&model.model.cfg))?;
        let live = Live::new(model, &catalog.dictionaries);

        let address = SocketAddr::new(options.host, options.port);
        let listener = TcpListener::bind(address).map_err(|cause| ServeError::Bind {
            address: address.to_string(),
            cause,
        })?;
        listener
            .set_nonblocking(true)
            .map_err(ServeError::Runtime)?;
        let state = Arc::new(AppState {
            pool: Pool::new(path),
            catalog,
            live,
            jobs: Arc::new(Semaphore::new(1)),
        });
        Ok(Server { listener, state })
    }

    pub fn local_addr(&self) -> Result<SocketAddr> {
        self.listener.local_addr().map_err(ServeError::Runtime)
    }

    /// `http://host:port/` of the bound socket.
    pub fn url(&self) -> Result<String> {
        Ok(format!("http://{}/", self.local_addr()?))
    }

    /// Dictionaries whose live pages cannot run, with why.
    pub fn unavailable_dictionaries(&self) -> Vec<(String, String)> {
        self.state
            .live
            .dictionaries
            .iter()
            .filter_map(|d| {
                d.state
                    .as_ref()
                    .err()
                    .map(|why| (d.name.clone(), why.clone()))
            })
            .collect()
    }

    /// Serves until the process ends.
    pub fn run(self) -> Result<()> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .map_err(ServeError::Runtime)?;
        runtime.block_on(self.run_async())
    }

    pub async fn run_async(self) -> Result<()> {
        let listener =
            tokio::net::TcpListener::from_std(self.listener).map_err(ServeError::Runtime)?;
        axum::serve(listener, router(self.state))
            .await
            .map_err(ServeError::Runtime)
    }
}
