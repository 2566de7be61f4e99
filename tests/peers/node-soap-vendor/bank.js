'use strict';
// A little bank behind the canonical account-system interface, written from
// wsdl/account-system.xsd and docs/vendor-guide.md (not from cardhub's code):
// accounts with an available and a ledger balance in integer minor units,
// every operation idempotent by transactionId, advices applied once.
//
// Result codes are the canonical three-digit codes that
// adapters/canonical.toml maps to DE 39.

const CODE = {
  APPROVED: '000',
  REVERSED: '400',
  ACKNOWLEDGED: '000',
  INVALID_AMOUNT: '110',
  UNKNOWN_ACCOUNT: '111',
  NSF: '116',
  ORIGINAL_NOT_FOUND: '480',
  INVALID_TRANSACTION: '902',
  DUPLICATE: '913',
};

/** A request the bank cannot read: answered with a SOAP Fault naming the field. */
class BadRequest extends Error {
  constructor(field, reason) {
    super(`${field}: ${reason}`);
    this.field = field;
  }
}

/** A non-negative amount in minor units, as the XSD's Amount (xs:long >= 0). */
function amountOf(args) {
  const text = String(args.amount ?? '').trim();
  if (!/^[0-9]+$/.test(text)) {
    throw new BadRequest('amount', `not an amount in minor units: ${JSON.stringify(text)}`);
  }
  const value = Number(text);
  if (!Number.isSafeInteger(value)) {
    throw new BadRequest('amount', `too large: ${text}`);
  }
  return value;
}

function required(args, field) {
  const value = args[field] === undefined || args[field] === null ? '' : String(args[field]).trim();
  if (value === '') {
    throw new BadRequest(field, 'missing');
  }
  return value;
}

class Bank {
  /**
   * @param {Object<string, {balance: number, currency: string}>} accounts
   *   opening balances (available = ledger) in minor units, by account id
   */
  constructor(accounts) {
    this.accounts = new Map();
    for (const [id, { balance, currency }] of Object.entries(accounts)) {
      if (!Number.isSafeInteger(balance)) {
        throw new Error(`account ${id}: balance ${balance} is not an integer in minor units`);
      }
      if (!/^[0-9]{3}$/.test(String(currency))) {
        throw new Error(`account ${id}: currency ${currency} is not ISO 4217 numeric`);
      }
      this.accounts.set(id, { currency: String(currency), available: balance, ledger: balance });
    }
    // Every request by transactionId: { operation, answer } (the first answer).
    this.seen = new Map();
    // Money-moving transactions by id: what they did, what is left to undo.
    this.booked = new Map();
    // Transaction ids whose money moved here, and by which request (an
    // approved Authorize/Load, or an Advice applying it in our place).
    this.applied = new Map();
    // Every booked movement, in order, for GET /admin/ledger.
    this.journal = [];
  }

  /**
   * Handles one operation; `args` is the request element as node-soap read it.
   * Returns the ...Response content in the XSD's element order.
   */
  handle(operation, args) {
    const id = required(args, 'transactionId');
    const first = this.seen.get(id);
    if (first) {
      if (first.operation === operation) {
        return first.answer;
      }
      // The same id for another operation is not a repeat: refused, nothing moves.
      const result = operation === 'Advice' ? 'ACKNOWLEDGED' : 'DECLINED';
      return this.answer(result, CODE.DUPLICATE, null,
        `transactionId ${id} was already used for ${first.operation}`);
    }
    const answer = this[operation.charAt(0).toLowerCase() + operation.slice(1)](id, args);
    this.seen.set(id, { operation, answer });
    return answer;
  }

  authorize(id, args) {
    const { account, amount, kind } = this.common(args);
    if (kind !== 'PURCHASE' && kind !== 'CASH') {
      return this.declined(account, CODE.INVALID_TRANSACTION, `kind ${kind} is not authorized`);
    }
    if (!account.state) {
      return this.declined(null, CODE.UNKNOWN_ACCOUNT, `unknown account ${account.id}`);
    }
    if (this.applied.has(id)) {
      return this.approved(account, CODE.APPROVED, id,
        `already applied by advice ${this.applied.get(id)}`);
    }
    if (amount > account.state.available) {
      return this.declined(account, CODE.NSF, 'insufficient funds');
    }
    // A purchase is held (available only); cash leaves the account at once.
    const effect = { available: -amount, ledger: kind === 'CASH' ? -amount : 0 };
    this.book(id, 'Authorize', account, null, amount, effect);
    return this.approved(account, CODE.APPROVED, id);
  }

  load(id, args) {
    const { account, amount, kind } = this.common(args);
    if (kind !== 'LOAD' && kind !== 'REFUND') {
      return this.declined(account, CODE.INVALID_TRANSACTION, `kind ${kind} is not a credit`);
    }
    if (!account.state) {
      return this.declined(null, CODE.UNKNOWN_ACCOUNT, `unknown account ${account.id}`);
    }
    this.book(id, 'Load', account, null, amount, { available: amount, ledger: amount });
    return this.approved(account, CODE.APPROVED, id);
  }

  reverse(id, args) {
    const { account, amount } = this.common(args);
    const originalId = required(args, 'originalTransactionId');
    // An original applied in our place by an advice is booked under the advice.
    const original = this.booked.get(this.applied.get(originalId) ?? originalId);
    if (!original) {
      if (this.seen.has(originalId)) {
        return this.answer('APPROVED', CODE.REVERSED, this.balancesOf(account),
          `${originalId} moved no money: nothing to undo`);
      }
      return this.answer('UNKNOWN_ORIGINAL', CODE.ORIGINAL_NOT_FOUND,
        this.balancesOf(account), `no transaction ${originalId}`);
    }
    if (original.account !== account.id) {
      return this.declined(account, CODE.INVALID_TRANSACTION,
        `transaction ${originalId} is not on account ${account.id}`);
    }
    if (amount > original.amount - original.reversed) {
      return this.declined(account, CODE.INVALID_AMOUNT,
        `only ${original.amount - original.reversed} of ${originalId} is left to reverse`);
    }
    // Undo the same share of each balance the original moved.
    const share = (delta) => (delta === 0 ? 0 : -Math.sign(delta) * amount);
    const effect = { available: share(original.effect.available), ledger: share(original.effect.ledger) };
    original.reversed += amount;
    this.book(id, 'Reverse', account, originalId, amount, effect);
    return this.answer('APPROVED', CODE.REVERSED, this.balancesOf(account), null);
  }

  advice(id, args) {
    const { account, amount, kind } = this.common(args);
    const decision = required(args, 'decision');
    const originalId = args.originalTransactionId === undefined ? null : String(args.originalTransactionId).trim();
    if (decision !== '00') {
      // A decline moved nothing; if we had approved it, a Reverse follows.
      return this.acknowledged(account, `decision ${decision}: nothing to apply`);
    }
    const appliedBy = originalId === null ? undefined : this.applied.get(originalId);
    if (appliedBy !== undefined) {
      return this.acknowledged(account, `${originalId} already applied by ${appliedBy}`);
    }
    if (!account.state) {
      // An advice cannot be declined; an account we do not keep cannot be
      // booked either: a Fault, so that cardhub keeps it and operators see it.
      throw new BadRequest('account', `unknown account ${account.id}`);
    }
    const credit = kind === 'LOAD' || kind === 'REFUND';
    const effect = credit
      ? { available: amount, ledger: amount }
      : { available: -amount, ledger: kind === 'CASH' ? -amount : 0 };
    this.book(id, 'Advice', account, originalId, amount, effect);
    if (originalId !== null) {
      this.applied.set(originalId, id);
    }
    return this.acknowledged(account, null);
  }

  balanceInquiry(id, args) {
    const account = this.account(args);
    if (!account.state) {
      return this.declined(null, CODE.UNKNOWN_ACCOUNT, `unknown account ${account.id}`);
    }
    return this.answer('APPROVED', CODE.APPROVED, this.balancesOf(account), null);
  }

  // ------------------------------------------------------------------ parts

  account(args) {
    const id = required(args, 'account');
    return { id, state: this.accounts.get(id) };
  }

  common(args) {
    const account = this.account(args);
    const amount = amountOf(args);
    const kind = required(args, 'kind');
    const currency = required(args, 'currency');
    if (account.state && account.state.currency !== currency) {
      throw new BadRequest('currency', `${currency} is not the currency of account ${account.id}`);
    }
    return { account, amount, kind };
  }

  book(id, operation, account, original, amount, effect) {
    account.state.available += effect.available;
    account.state.ledger += effect.ledger;
    const entry = { id, operation, account: account.id, original, amount, effect, reversed: 0 };
    this.booked.set(id, entry);
    if (operation === 'Authorize' || operation === 'Load') {
      this.applied.set(id, id);
    }
    this.journal.push({ id, operation, account: account.id, original, amount, effect });
  }

  balancesOf(account) {
    return account.state ? { available: account.state.available, ledger: account.state.ledger } : null;
  }

  approved(account, code, id, message) {
    return this.answer('APPROVED', code, this.balancesOf(account), message || null, authorizationId(id));
  }

  declined(account, code, message) {
    return this.answer('DECLINED', code, account ? this.balancesOf(account) : null, message);
  }

  acknowledged(account, message) {
    return this.answer('ACKNOWLEDGED', CODE.ACKNOWLEDGED, this.balancesOf(account), message);
  }

  /**
   * An answer in the XSD's order: result, resultCode, [authorizationId],
   * [availableBalance, ledgerBalance], [message].
   */
  answer(result, resultCode, balances, message, authId) {
    const answer = { result, resultCode };
    if (authId) {
      answer.authorizationId = authId;
    }
    if (balances) {
      answer.availableBalance = String(balances.available);
      answer.ledgerBalance = String(balances.ledger);
    }
    if (message) {
      answer.message = message;
    }
    return answer;
  }

  /** What GET /admin/ledger shows. */
  snapshot() {
    return {
      accounts: Object.fromEntries(this.accounts),
      transactions: this.journal,
    };
  }
}

/** A six-character authorization id derived from the transaction id. */
function authorizationId(id) {
  let hash = 0;
  for (const ch of id) {
    hash = (hash * 31 + ch.charCodeAt(0)) % 1000000;
  }
  return String(hash).padStart(6, '0');
}

module.exports = { Bank, BadRequest, CODE };
