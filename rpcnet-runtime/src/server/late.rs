//! Methods added after a server is bound ([`BoundServer::add_service`](super::BoundServer::add_service)):
//! an append-only list, consulted only when a method is not in the table fixed at bind
//! time, so the lookup of the methods known at bind time is unchanged.

use std::sync::{Arc, OnceLock};

use crate::handler::MethodHandler;

/// An append-only list of methods; readers borrow entries without locking.
#[derive(Debug, Default)]
pub(super) struct LateMethods {
    head: OnceLock<Box<Entry>>,
}

#[derive(Debug)]
struct Entry {
    name: Arc<str>,
    handler: MethodHandler,
    next: OnceLock<Box<Entry>>,
}

impl LateMethods {
    /// The method named `name`, if one was added.
    pub(super) fn get(&self, name: &[u8]) -> Option<(&Arc<str>, &MethodHandler)> {
        let mut slot = &self.head;
        while let Some(entry) = slot.get() {
            if entry.name.as_bytes() == name {
                return Some((&entry.name, &entry.handler));
            }
            slot = &entry.next;
        }
        None
    }

    /// Appends a method. Returns it back if a method of that name is already listed.
    pub(super) fn push(&self, name: Arc<str>, handler: MethodHandler) -> Result<(), Arc<str>> {
        let mut new = Box::new(Entry {
            name,
            handler,
            next: OnceLock::new(),
        });
        let mut slot = &self.head;
        loop {
            if let Some(entry) = slot.get() {
                if entry.name == new.name {
                    return Err(new.name);
                }
                slot = &entry.next;
                continue;
            }
            match slot.set(new) {
                Ok(()) => return Ok(()),
                // Another thread appended here first: keep walking from its entry.
                Err(back) => new = back,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn handler() -> MethodHandler {
        MethodHandler::raw_unary(|_, request: Bytes| async move { Ok(request) })
    }

    #[test]
    fn late_methods_are_found_by_name_and_refuse_duplicates() {
        let methods = LateMethods::default();
        assert!(methods.get(b"a.x").is_none());
        methods.push(Arc::from("a.x"), handler()).expect("first");
        methods.push(Arc::from("a.y"), handler()).expect("second");
        assert_eq!(methods.get(b"a.x").map(|(n, _)| &**n), Some("a.x"));
        assert_eq!(methods.get(b"a.y").map(|(n, _)| &**n), Some("a.y"));
        assert!(methods.get(b"a.z").is_none());
        assert!(methods.push(Arc::from("a.y"), handler()).is_err());
    }

    #[test]
    fn concurrent_pushes_all_land() {
        let methods = Arc::new(LateMethods::default());
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let methods = Arc::clone(&methods);
                std::thread::spawn(move || {
                    for i in 0..50 {
                        methods
                            .push(Arc::from(format!("s{t}.m{i}")), handler())
                            .expect("unique");
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().expect("no panic");
        }
        for t in 0..8 {
            for i in 0..50 {
                assert!(methods.get(format!("s{t}.m{i}").as_bytes()).is_some());
            }
        }
    }
}
