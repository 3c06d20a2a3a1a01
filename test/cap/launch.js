// Test launcher for the CAP subcommands (built dist/, as the published bin runs it).
require('../../dist/cli/main.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code;
  });
