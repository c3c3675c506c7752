// Exports N log records to faultline with the OpenTelemetry JS SDK's own OTLP exporter:
//   node export.js URL json|proto N [gzip]
// The records go through a LoggerProvider and a BatchLogRecordProcessor, as in an application.
// Prints {"exports": k, "succeeded": k, "errors": [...]} and exits 0 only when every export the
// SDK made reported success.
'use strict';
const { SeverityNumber } = require('@opentelemetry/api-logs');
const { LoggerProvider, BatchLogRecordProcessor } = require('@opentelemetry/sdk-logs');
const { resourceFromAttributes } = require('@opentelemetry/resources');
const { ExportResultCode } = require('@opentelemetry/core');

const [url, encoding, count, compression] = process.argv.slice(2);
const { OTLPLogExporter } = encoding === 'proto'
  ? require('@opentelemetry/exporter-logs-otlp-proto')
  : require('@opentelemetry/exporter-logs-otlp-http');

(async () => {
  const exporter = new OTLPLogExporter({ url, compression: compression === 'gzip' ? 'gzip' : 'none',
                                         timeoutMillis: 10000 });
  const results = [];
  // The exporter, observed: the processor swallows failures (they go to the global handler).
  const observed = {
    export: (records, done) => exporter.export(records, (r) => { results.push(r); done(r); }),
    forceFlush: () => exporter.forceFlush(),
    shutdown: () => exporter.shutdown(),
  };
  const provider = new LoggerProvider({
    resource: resourceFromAttributes({ 'service.name': `checkout-${encoding}` }),
    processors: [new BatchLogRecordProcessor({ exporter: observed, maxExportBatchSize: 200,
                                               maxQueueSize: 4096 })],
  });
  const logger = provider.getLogger('faultline-test', '1.0.0');
  const n = Number(count);
  for (let i = 0; i < n; i++) {
    // Errors with a varying number (one template), and warnings as map bodies.
    if (i % 2 === 0)
      logger.emit({ severityNumber: SeverityNumber.ERROR, severityText: 'ERROR',
                    body: `payment ${i} declined by upstream`, attributes: { i } });
    else
      logger.emit({ severityNumber: SeverityNumber.WARN, severityText: 'WARN',
                    body: { message: `cache ${i} is cold`, shard: i % 7 } });
  }
  await provider.forceFlush();
  await provider.shutdown();
  const errors = results.filter((r) => r.code !== ExportResultCode.SUCCESS)
    .map((r) => String(r.error && r.error.message));
  console.log(JSON.stringify({ exports: results.length, succeeded: results.length - errors.length, errors }));
  process.exit(results.length > 0 && errors.length === 0 ? 0 : 1);
})().catch((e) => { console.error(e); process.exit(2); });
