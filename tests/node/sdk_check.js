#!/usr/bin/env node
// Drives the real node-bigcommerce (npm) through bcgate over HTTPS.
//
// Run by tests/it/node_sdk.rs with NODE_PATH pointing at the node_modules that
// scripts/install-test-deps makes under target/sdk/node, in the environment
// docs/sdks.md's node recipe sets up:
//   BCGATE_ADDR     host:port of bcgate's HTTPS listener
//   BCGATE_CA_FILE  the CA that signed bcgate's certificate
//   BCGATE_KEY      the service's bcgate key, given to the SDK as its accessToken
//   BC_STORE_HASH   the store hash (or alias)
//
// The lines between the recipe markers are docs/sdks.md's node recipe,
// character for character (tests/it/node_sdk.rs checks). Prints one JSON object
// on the last line of stdout; exits 1 on any unexpected error.
'use strict';

async function main() {
  // recipe: node
  const fs = require('fs');
  const https = require('https');
  const net = require('net');
  const tls = require('tls');
  const BigCommerce = require('node-bigcommerce');

  // node-bigcommerce always dials api.bigcommerce.com:443. This agent dials
  // bcgate instead, and checks bcgate's certificate (not api.bigcommerce.com's)
  // against the CA that signed it.
  const [gateHost, gatePort] = process.env.BCGATE_ADDR.split(':');
  const gateCa = fs.readFileSync(process.env.BCGATE_CA_FILE);
  const agent = new https.Agent({ keepAlive: true });
  agent.createConnection = (options) =>
    tls.connect({
      ...options,
      host: gateHost,
      port: Number(gatePort),
      servername: net.isIP(gateHost) ? '' : gateHost,
      ca: gateCa,
    });

  const bigCommerce = new BigCommerce({
    clientId: 'bcgate', // any value: the SDK wants one; bcgate drops X-Auth-Client
    accessToken: process.env.BCGATE_KEY, // this service's bcgate key, not the store token
    storeHash: process.env.BC_STORE_HASH, // the store's hash or its bcgate alias
    responseType: 'json',
    apiVersion: 'v3',
    agent,
  });
  // (in an async function)
  const products = await bigCommerce.get('/catalog/products?limit=1');
  // end recipe

  const v2 = new BigCommerce({ ...bigCommerce.config, apiVersion: 'v2' });
  const order = await v2.get('/orders/1');
  let denied = null;
  try {
    await bigCommerce.post('/catalog/products', { name: 'Denied T-shirt', type: 'physical' });
  } catch (err) {
    denied = { code: err.code, message: err.message };
  }
  agent.destroy();
  console.log(JSON.stringify({ products, order, denied }));
}

main().catch((err) => {
  console.error(`sdk_check failed: ${err && err.stack ? err.stack : err}`);
  process.exit(1);
});
