//! One call to one dependency: build the URL, send it through the traced
//! client with the dependency's timeout, classify what came back.

use std::time::{Duration, Instant};

use axum::http::StatusCode;
use reqwest_middleware::Error as MiddlewareError;
use serde::de::DeserializeOwned;
use telemetry::client::UrlTemplate;
use telemetry::HttpClient;

use crate::config::Dependency;
use crate::AggregatorError;

/// A value and how long the call that produced it took.
#[derive(Debug)]
pub(crate) struct Timed<T> {
    pub value: T,
    pub elapsed: Duration,
}

pub(crate) struct Downstream {
    /// The dependency's service name, used in error messages.
    pub name: &'static str,
    pub dependency: Dependency,
    pub client: HttpClient,
}

impl Downstream {
    /// `GET` the path made of `segments` (each percent-encoded, so an id can
    /// never change the path) and decode the JSON answer.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        template: &'static str,
    ) -> Result<Timed<T>, AggregatorError> {
        let mut url = self.dependency.base_url.clone();
        url.path_segments_mut()
            .map_err(|()| AggregatorError::Internal(format!("{} has no base URL", self.name)))?
            .pop_if_empty()
            .extend(segments);

        let started = Instant::now();
        let response = self
            .client
            .get(url)
            .timeout(self.dependency.timeout)
            .with_extension(UrlTemplate(template.into()))
            .send()
            .await
            .map_err(|e| self.classify_send_error(e))?;

        let status = response.status();
        if !status.is_success() {
            return Err(self.classify_status(status, response).await);
        }
        let value = response.json::<T>().await.map_err(|e| {
            if e.is_timeout() {
                self.timeout()
            } else {
                AggregatorError::BadAnswer {
                    dependency: self.name,
                    message: e.to_string(),
                }
            }
        })?;
        Ok(Timed {
            value,
            elapsed: started.elapsed(),
        })
    }

    fn timeout(&self) -> AggregatorError {
        AggregatorError::Timeout {
            dependency: self.name,
            timeout: self.dependency.timeout,
        }
    }

    fn classify_send_error(&self, error: MiddlewareError) -> AggregatorError {
        match &error {
            MiddlewareError::Reqwest(e) if e.is_timeout() => self.timeout(),
            _ => AggregatorError::Unreachable {
                dependency: self.name,
                message: error_chain(&error),
            },
        }
    }

    /// 400 and 404 are the caller's mistake, passed through with the
    /// dependency's own message; anything else means the dependency failed.
    async fn classify_status(
        &self,
        status: StatusCode,
        response: reqwest::Response,
    ) -> AggregatorError {
        if status == StatusCode::BAD_REQUEST || status == StatusCode::NOT_FOUND {
            let message = response
                .json::<serde_json::Value>()
                .await
                .ok()
                .and_then(|v| {
                    v.pointer("/error/message")
                        .and_then(|m| m.as_str())
                        .map(str::to_owned)
                })
                .unwrap_or_else(|| format!("{} answered HTTP {status}", self.name));
            return AggregatorError::Rejected {
                dependency: self.name,
                status,
                message,
            };
        }
        AggregatorError::Failed {
            dependency: self.name,
            status,
        }
    }
}

/// reqwest's top-level message ("error sending request") hides the cause
/// ("connection refused"); the whole chain is what a reader needs.
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
