// Loaded by mocha before any test (.mocharc.json "require"): servers started in-process or as
// children log warnings and errors only, unless CHUNKFS_LOG says otherwise.
process.env.CHUNKFS_LOG ??= 'warn';
