//! Redirect policies.
use std::fmt;
use std::sync::Arc;

use http::StatusCode;
use url::Url;

/// What to do with redirect responses (301, 302, 303, 307, 308).
///
/// Whatever the policy, a redirect back to a URL already visited with the same method is
/// an error of kind [`Redirect`](crate::ErrorKind::Redirect) naming the chain.
///
/// ```
/// use spindle::client::{Redirect, RedirectAction};
/// let none = Redirect::none();
/// let five = Redirect::limit(5);
/// let same_host = Redirect::custom(|attempt| {
///     if attempt.next().host_str() == attempt.previous().last().and_then(|u| u.host_str()) {
///         RedirectAction::Follow
///     } else {
///         RedirectAction::Stop
///     }
/// });
/// # drop((none, five, same_host));
/// ```
#[derive(Clone)]
pub struct Redirect {
    pub(crate) policy: Policy,
}

#[derive(Clone)]
pub(crate) enum Policy {
    None,
    Limit(usize),
    Custom(Arc<dyn Fn(&Attempt<'_>) -> RedirectAction + Send + Sync>),
}

impl Redirect {
    /// Never follow: the redirect response is returned as it is.
    pub fn none() -> Redirect {
        Redirect {
            policy: Policy::None,
        }
    }

    /// Follow up to `max` redirects; one more is an error.
    pub fn limit(max: usize) -> Redirect {
        Redirect {
            policy: Policy::Limit(max),
        }
    }

    /// Let `decide` choose for each redirect.
    pub fn custom(
        decide: impl Fn(&Attempt<'_>) -> RedirectAction + Send + Sync + 'static,
    ) -> Redirect {
        Redirect {
            policy: Policy::Custom(Arc::new(decide)),
        }
    }
}

impl Default for Redirect {
    /// Follow up to 10 redirects.
    fn default() -> Self {
        Redirect::limit(10)
    }
}

impl fmt::Debug for Redirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.policy {
            Policy::None => f.write_str("Redirect::none()"),
            Policy::Limit(n) => write!(f, "Redirect::limit({n})"),
            Policy::Custom(_) => f.write_str("Redirect::custom(..)"),
        }
    }
}

/// What a custom policy decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedirectAction {
    /// Follow the redirect.
    Follow,
    /// Return the redirect response as the final response.
    Stop,
    /// Fail with an error of kind [`Redirect`](crate::ErrorKind::Redirect) and this message.
    Error(String),
}

/// A redirect about to be followed, shown to a custom policy.
#[derive(Debug)]
pub struct Attempt<'a> {
    pub(crate) status: StatusCode,
    pub(crate) next: &'a Url,
    pub(crate) previous: &'a [Url],
}

impl Attempt<'_> {
    /// The redirect's status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Where the redirect points.
    pub fn next(&self) -> &Url {
        self.next
    }

    /// The URLs requested so far, the first one first; the last one answered with this
    /// redirect.
    pub fn previous(&self) -> &[Url] {
        self.previous
    }
}

/// Whether `status` is a redirect the client knows how to follow.
pub(crate) fn is_redirect(status: StatusCode) -> bool {
    matches!(status.as_u16(), 301 | 302 | 303 | 307 | 308)
}
