#!/usr/bin/env node
'use strict';
// An account-system vendor generated from cardhub's canonical WSDL with
// node-soap: an independent peer for cardhub's tests (tests/wsdl_vendor.rs).
//
//   node vendor.js --accounts accounts.json [--wsdl path/to/account-system.wsdl]
//   node vendor.js --account A-1001=100000:840 --account A-1002=5000:840
//
// accounts.json: {"A-1001": {"balance": 100000, "currency": "840"}, ...}
// (minor units). Listens on 127.0.0.1, port 0 unless --port; the first line
// on stdout is `listening 127.0.0.1:PORT`.
//
//   POST /account-system      the WSDL's SOAP 1.1 port (node-soap)
//   GET  /account-system?wsdl the WSDL
//   POST /admin/delay?ms=N[&operation=Authorize]
//                             answer later by N ms (every operation, or one);
//                             the request is booked on arrival, the answer
//                             waits: a bank that is slow to answer
//   GET  /admin/ledger        accounts, booked transactions, every SOAP
//                             request with its SOAPAction header

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { parseArgs } = require('node:util');
const soap = require('soap');
const { Bank, BadRequest } = require('./bank');

const NS = 'urn:cardhub:account-system:v1';
const OPERATIONS = ['Authorize', 'Load', 'Reverse', 'Advice', 'BalanceInquiry'];
const SOAP_PATH = '/account-system';

function options() {
  const { values } = parseArgs({
    options: {
      accounts: { type: 'string' },
      account: { type: 'string', multiple: true, default: [] },
      wsdl: { type: 'string', default: path.resolve(__dirname, '../../../wsdl/account-system.wsdl') },
      port: { type: 'string', default: '0' },
    },
  });
  const accounts = values.accounts ? JSON.parse(fs.readFileSync(values.accounts, 'utf8')) : {};
  for (const spec of values.account) {
    const m = /^([^=]+)=(-?[0-9]+)(?::([0-9]{3}))?$/.exec(spec);
    if (!m) {
      throw new Error(`--account ${spec}: expected ID=MINOR_UNITS[:CURRENCY]`);
    }
    accounts[m[1]] = { balance: Number(m[2]), currency: m[3] || '840' };
  }
  return { accounts, wsdl: values.wsdl, port: Number(values.port) };
}

/** Delays per operation ('*' for all), in ms, as set by POST /admin/delay. */
class Delays {
  constructor() {
    this.ms = new Map();
  }

  set(operation, ms) {
    this.ms.set(operation || '*', ms);
  }

  of(operation) {
    return this.ms.get(operation) ?? this.ms.get('*') ?? 0;
  }
}

/** The SOAPAction each operation's binding declares, read from the WSDL. */
function bindingActions(wsdl) {
  const port = wsdl.definitions.services.AccountSystemService.ports.AccountSystemSoap11Port;
  const actions = {};
  for (const [name, method] of Object.entries(port.binding.methods)) {
    actions[name] = method.soapAction;
  }
  return actions;
}

function fault(code, message) {
  return {
    Fault: {
      faultcode: 'soap:Client',
      faultstring: message,
      detail: {
        'as:AccountSystemFault': {
          attributes: { 'xmlns:as': NS },
          'as:code': code,
          'as:message': message,
        },
      },
      statusCode: 500,
    },
  };
}

function main() {
  const opts = options();
  const bank = new Bank(opts.accounts);
  const delays = new Delays();
  // Every SOAP request that reached the port, with its SOAPAction header and
  // the operation node-soap dispatched it to (null when it dispatched none).
  const requests = [];
  let actions = {};

  const handler = (operation) => async (args, _callback, _headers, req) => {
    const record = req.vendorRecord;
    if (record) {
      record.operation = operation;
      record.transactionId = args && args.transactionId !== undefined ? String(args.transactionId) : null;
    }
    // Stricter than node-soap: the action must be exactly the binding's.
    const action = record ? record.soapAction : undefined;
    if (action !== actions[operation]) {
      const sent = action === undefined ? 'no SOAPAction' : `SOAPAction ${JSON.stringify(action)}`;
      throw fault('ACTION_MISMATCH', `${sent}: ${operation} is ${JSON.stringify(actions[operation])}`);
    }
    const delay = delays.of(operation);
    let answer;
    try {
      answer = bank.handle(operation, args || {});
    } catch (e) {
      if (e instanceof BadRequest) {
        throw fault('INVALID_REQUEST', e.message);
      }
      throw e;
    }
    if (record) {
      record.resultCode = answer.resultCode;
    }
    if (delay > 0) {
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
    return answer;
  };
  const port = Object.fromEntries(OPERATIONS.map((op) => [op, handler(op)]));
  const services = {
    AccountSystemService: { AccountSystemSoap11Port: port, AccountSystemSoap12Port: port },
  };

  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const json = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    };
    if (req.method === 'GET' && url.pathname === '/admin/ledger') {
      return json(200, { ...bank.snapshot(), requests });
    }
    if (req.method === 'POST' && url.pathname === '/admin/delay') {
      const ms = Number(url.searchParams.get('ms'));
      const operation = url.searchParams.get('operation');
      if (!Number.isSafeInteger(ms) || ms < 0) {
        return json(400, { error: `ms: not a non-negative integer: ${url.searchParams.get('ms')}` });
      }
      if (operation !== null && !OPERATIONS.includes(operation)) {
        return json(400, { error: `operation: not one of ${OPERATIONS.join(', ')}: ${operation}` });
      }
      delays.set(operation, ms);
      return json(200, { operation: operation || '*', ms });
    }
    return json(404, { error: `no route ${req.method} ${url.pathname}` });
  });

  server.listen(opts.port, '127.0.0.1', () => {
    const soapServer = soap.listen(server, {
      path: SOAP_PATH,
      services,
      xml: fs.readFileSync(opts.wsdl, 'utf8'),
      // Resolves the WSDL's <xs:import schemaLocation="account-system.xsd"> from disk.
      uri: opts.wsdl,
      callback: (err, ready) => {
        if (err) {
          console.error(`vendor: cannot read ${opts.wsdl}: ${err.message}`);
          process.exit(1);
        }
        actions = bindingActions(ready.wsdl);
        const { address, port: bound } = server.address();
        console.log(`listening ${address}:${bound}`);
      },
    });
    soapServer.log = (type, _data, req) => {
      if (type === 'received' && req) {
        req.vendorRecord = {
          seq: requests.length + 1,
          soapAction: req.headers.soapaction === undefined
            ? undefined
            : req.headers.soapaction.replace(/^"(.*)"$/, '$1'),
          operation: null,
          transactionId: null,
          resultCode: null,
        };
        requests.push(req.vendorRecord);
      }
    };
  });
}

main();
