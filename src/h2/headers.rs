pub mod headers {}
