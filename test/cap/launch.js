// Test launcher for the CAP subcommands (built dist/, as the published bin runs it).
require('../../dist/cap/cli_hook.js').capMain(process.argv.slice(2)).then((code) => { process.exitCode = code; });
