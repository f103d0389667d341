'use strict';
// The integration-test harness, in one require:
//   const h = require('./lib');
// CommonJS; tests use node:test (`node --test tests/integration/`).
module.exports = {
  ...require('./util'),
  ...require('./stack'),
  ...require('./fake-upstream'),
  ...require('./http'),
  ...require('./sse-client'),
  ...require('./redis'),
  ...require('./nginx'),
  ...require('./webservers'),
};
