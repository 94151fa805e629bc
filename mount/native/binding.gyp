{
  "targets": [
    {
      "target_name": "chunkfs_fuse",
      "sources": ["chunkfs_fuse.c", "dirents.c", "raw_names.c"],
      "include_dirs": ["/usr/include/fuse3"],
      "libraries": ["-lfuse3"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
