//! Page migration of movable allocations (Linux's `mm/migrate.c` with `movable_operations`,
//! the non-LRU movable page interface).
//!
//! An allocated block becomes movable when its owner says it can move it
//! ([`Machine::set_page_movable`], Linux's `__SetPageMovable(page, mops)`): the head gets
//! [`PageFlags::MOVABLE`] and the owner's index (where a device page keeps its pagemap).
//! Moving it ([`Machine::migrate_page`], and `offline_pages` for every movable block of the
//! range) asks the owner first ([`MovableOps::isolate_page`]: it may refuse while it uses
//! the block), allocates a block of the same order, copies the contents through the
//! [`Platform`] (`copy_pages`), gives the new block the movable flag and owner, and then tells
//! the owner the new pfn ([`MovableOps::migrate_page`]). A block with more than its owner's
//! reference (someone pinned it with `get_page`) cannot move, as in Linux, where migration
//! expects the page's count to be the owner's alone. Blocks that are not movable never move.
//!
//! Owners are `'static` trait objects registered once ([`Machine::register_movable_ops`]);
//! they must not call back into the memory manager from their callbacks (they run with it
//! held exclusively).

use core::fmt;

use crate::gfp::Gfp;
use crate::machine::Machine;
use crate::page::PageFlags;
use crate::platform::Platform;
use crate::zone::ZoneId;

/// What the owner of movable blocks provides (`struct movable_operations`).
pub trait MovableOps: Sync {
    /// `isolate_page`: may the block of `order` at `pfn` move now? False while the owner
    /// is using it; the migration then fails with [`MigrateError::IsolationFailed`].
    fn isolate_page(&self, pfn: u64, order: u32) -> bool;

    /// `migrate_page`: the block's contents have been copied from `src` to `dst`; from now
    /// on the owner uses `dst` (the memory manager frees or takes `src`).
    fn migrate_page(&self, src: u64, dst: u64, order: u32);
}

/// A registered owner of movable blocks (its index).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MovableOwner(u16);

impl MovableOwner {
    /// The owner's index in registration order.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Why a block was not made movable or not moved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrateError {
    /// No more owners can be registered (the index is 16 bits).
    TooManyOwners,
    /// The owner was never registered.
    UnknownOwner,
    /// `pfn` is not the head of an allocated RAM block.
    NotAllocated {
        /// The pfn given.
        pfn: u64,
    },
    /// The block has no owner that can move it.
    NotMovable {
        /// The pfn given.
        pfn: u64,
    },
    /// The owner refused to let the block go now (`isolate_page` returned false).
    IsolationFailed {
        /// The block.
        pfn: u64,
    },
    /// The block has references besides its owner's (pinned).
    Pinned {
        /// The block.
        pfn: u64,
        /// Its reference count.
        refcount: u32,
    },
    /// No free block of the order to move it to.
    NoMemory {
        /// The block.
        pfn: u64,
        /// Its order.
        order: u32,
    },
}

impl fmt::Display for MigrateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyOwners => f.write_str("too many movable page owners"),
            Self::UnknownOwner => f.write_str("unknown movable page owner"),
            Self::NotAllocated { pfn } => {
                write!(f, "pfn {pfn:#x} is not the head of an allocated block")
            }
            Self::NotMovable { pfn } => write!(f, "pfn {pfn:#x} is not movable"),
            Self::IsolationFailed { pfn } => {
                write!(f, "failed to isolate pfn {pfn:#x}: its owner is using it")
            }
            Self::Pinned { pfn, refcount } => write!(
                f,
                "pfn {pfn:#x} is pinned (refcount {refcount}): it cannot move"
            ),
            Self::NoMemory { pfn, order } => write!(
                f,
                "no free block of order {order} to migrate pfn {pfn:#x} to"
            ),
        }
    }
}

impl MigrateError {
    /// The `dump_page` reason Linux gives for this failure in offline_pages.
    pub const fn dump_reason(&self) -> &'static str {
        match self {
            Self::IsolationFailed { .. } => "isolation failed",
            Self::NotMovable { .. } | Self::NotAllocated { .. } => "unmovable page",
            _ => "migration failure",
        }
    }
}

impl<P: Platform> Machine<P> {
    /// Register an owner of movable blocks; the handle names it in
    /// [`set_page_movable`](Self::set_page_movable).
    pub fn register_movable_ops(
        &mut self,
        ops: &'static dyn MovableOps,
    ) -> Result<MovableOwner, MigrateError> {
        let idx = u16::try_from(self.movable_ops.len())
            .ok()
            .filter(|&i| i < u16::MAX)
            .ok_or(MigrateError::TooManyOwners)?;
        self.movable_ops.push(ops);
        Ok(MovableOwner(idx))
    }

    /// `__SetPageMovable`: the allocated block at `pfn` (its head, which the caller holds)
    /// belongs to `owner`, who can move it. Refused for anything but an allocated RAM block
    /// head (device pages and memmap blocks never move).
    pub fn set_page_movable(&self, pfn: u64, owner: MovableOwner) -> Result<(), MigrateError> {
        if owner.index() >= self.movable_ops.len() {
            return Err(MigrateError::UnknownOwner);
        }
        let page = self
            .sparse
            .page(pfn)
            .filter(|p| {
                p.flag_bits()
                    & (PageFlags::HEAD
                        | PageFlags::DEVICE
                        | PageFlags::MEMMAP
                        | PageFlags::RESERVED)
                        .bits()
                    == PageFlags::HEAD.bits()
                    && p.refcount() > 0
            })
            .ok_or(MigrateError::NotAllocated { pfn })?;
        page.set_pgmap_raw(owner.0 + 1);
        page.set(PageFlags::MOVABLE);
        Ok(())
    }

    /// `migrate_pages` for one movable block: move it (see the module documentation) to a
    /// block on its own node if it has one free, else the nearest node, and free the old
    /// block. Returns the new pfn; on any failure nothing changed.
    pub fn migrate_page(&mut self, pfn: u64) -> Result<u64, MigrateError> {
        let (dst, order) = self.move_block(pfn, false)?;
        // The source is an allocated head with its count of one and no owner now.
        if let Err(e) = self.free_pages(pfn, order) {
            log::error!("migrate_page: freeing the old block: {e}");
        }
        Ok(dst)
    }

    /// Move the movable block at `src` to a new block: the owner is asked, the contents
    /// copied and the owner told. `other_node_first` as offline_pages allocates its targets
    /// (`do_migrate_range`: another node with memory if there is one). Returns the new pfn
    /// and the order; `src` is left allocated (count 1) without flag or owner, for the caller.
    pub(crate) fn move_block(
        &self,
        src: u64,
        other_node_first: bool,
    ) -> Result<(u64, u32), MigrateError> {
        let page = self
            .sparse
            .page(src)
            .filter(|p| p.has(PageFlags::HEAD) && !p.is_device())
            .ok_or(MigrateError::NotAllocated { pfn: src })?;
        let owner = page
            .movable_owner()
            .filter(|&o| o < self.movable_ops.len())
            .ok_or(MigrateError::NotMovable { pfn: src })?;
        let order = page.order();
        let refcount = page.refcount();
        if refcount != 1 {
            return Err(MigrateError::Pinned { pfn: src, refcount });
        }
        let ops = self.movable_ops[owner];
        if !ops.isolate_page(src, order) {
            return Err(MigrateError::IsolationFailed { pfn: src });
        }
        let dst = self
            .alloc_migration_target(page.nid(), page.zone(), order, other_node_first)
            .ok_or(MigrateError::NoMemory { pfn: src, order })?;
        self.transfer(src, dst, order, owner);
        Ok((dst, order))
    }

    /// Undo [`move_block`](Self::move_block): the contents go back from `dst` to `src`, the
    /// owner is told, and `dst` is freed.
    pub(crate) fn move_block_back(&self, src: u64, dst: u64) {
        let Some(owner) = self.sparse.page(dst).and_then(|p| p.movable_owner()) else {
            return;
        };
        let order = self.sparse.page(dst).map_or(0, |p| p.order());
        self.transfer(dst, src, order, owner);
        if let Err(e) = self.free_pages(dst, order) {
            log::error!("migration rollback: freeing pfn {dst:#x}: {e}");
        }
    }

    /// Copy `from` to `to`, move the flag and owner over, tell the owner.
    fn transfer(&self, from: u64, to: u64, order: u32, owner: usize) {
        self.platform.copy_pages(from, to, 1 << order);
        if let Some(p) = self.sparse.page(to) {
            p.set_pgmap_raw(owner as u16 + 1);
            p.set(PageFlags::MOVABLE);
        }
        if let Some(p) = self.sparse.page(from) {
            p.clear(PageFlags::MOVABLE);
            p.set_pgmap_raw(0);
        }
        self.movable_ops[owner].migrate_page(from, to, order);
    }

    /// `alloc_migration_target`: a block of `order` near node `nid` for a page of `zone`;
    /// with `other_node_first`, from the other nodes in distance order before `nid` itself.
    fn alloc_migration_target(
        &self,
        nid: usize,
        zone: ZoneId,
        order: u32,
        other_node_first: bool,
    ) -> Option<u64> {
        // GFP_USER | __GFP_MOVABLE, and __GFP_HIGHMEM for a page of ZONE_MOVABLE, which
        // opens ZONE_MOVABLE to the target too.
        let mut gfp = Gfp::KERNEL | Gfp::MOVABLE | Gfp::NOWARN;
        if zone == ZoneId::Movable {
            gfp |= Gfp::HIGHUSER_MOVABLE;
        }
        if other_node_first && let Some(node) = self.nodes.get(nid) {
            for &other in node.node_order.iter().filter(|&&n| n != nid) {
                if let Some(pfn) = self.alloc_pages_node(other, gfp | Gfp::THISNODE, order) {
                    return Some(pfn);
                }
            }
        }
        self.alloc_pages_node(nid, gfp, order)
    }
}
