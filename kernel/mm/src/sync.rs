//! The lock the memory manager uses (a spin lock: the allocator runs with interrupts off and
//! never sleeps), named in one place so the whole crate uses one kind.
//!
//! With the `shuttle` feature (host model checking only, tests/model_check.rs) the lock is
//! shuttle's mutex behind the same methods (`new`, `lock`, `try_lock`, `get_mut`,
//! `into_inner`), so that shuttle's scheduler controls every lock acquisition of the real
//! allocator code; such a build must run its allocator inside a shuttle test.

#[cfg(not(feature = "shuttle"))]
pub(crate) use spin::Mutex;

#[cfg(feature = "shuttle")]
pub(crate) use model::Mutex;

#[cfg(feature = "shuttle")]
mod model {
    /// spin's `Mutex` API as the crate uses it over shuttle's mutex. A lock poisoned by a
    /// panicking thread is taken anyway: the panic already fails the test.
    #[derive(Debug)]
    pub(crate) struct Mutex<T>(shuttle::sync::Mutex<T>);

    // Not every build of the crate uses every method.
    #[allow(dead_code)]
    impl<T> Mutex<T> {
        pub(crate) const fn new(value: T) -> Self {
            Self(shuttle::sync::Mutex::new(value))
        }

        #[inline]
        pub(crate) fn lock(&self) -> shuttle::sync::MutexGuard<'_, T> {
            self.0.lock().unwrap_or_else(|e| e.into_inner())
        }

        /// spin's `try_lock`: None when another thread holds the lock.
        #[inline]
        pub(crate) fn try_lock(&self) -> Option<shuttle::sync::MutexGuard<'_, T>> {
            match self.0.try_lock() {
                Ok(g) => Some(g),
                Err(shuttle::sync::TryLockError::Poisoned(e)) => Some(e.into_inner()),
                Err(shuttle::sync::TryLockError::WouldBlock) => None,
            }
        }

        #[inline]
        pub(crate) fn get_mut(&mut self) -> &mut T {
            self.0.get_mut().unwrap_or_else(|e| e.into_inner())
        }

        #[inline]
        pub(crate) fn into_inner(self) -> T {
            self.0.into_inner().unwrap_or_else(|e| e.into_inner())
        }
    }
}
