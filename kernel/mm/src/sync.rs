//! The lock the memory manager uses (a spin lock: the allocator runs with interrupts off and
//! never sleeps), named in one place so the whole crate uses one kind.

pub(crate) use spin::Mutex;
