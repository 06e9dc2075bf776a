// The exchange's side of spend (`../spend.ts` holds the wallet): a key's admission before routing, a stream's
// usage asked for, and the cost of the answer.
import type { OutgoingHttpHeaders } from 'node:http';
import type { Usage } from '@lb/core';
import { askForUsage } from '@lb/exchange';
import type { VirtualKey } from '@lb/spend';
import { sendError } from '../http.js';
import { COST_HEADER, costText, spendRefusal, type Wallet } from '../spend.js';
import type { Exchange } from './exchange.js';
import { finish } from './outcome.js';

/**
 * Spend before routing: the key's expiry, model and budgets (false: refused and answered), its tags, and for a
 * stream, the upstream asked for usage when the client did not (`spend-hooks`: `askForUsage`).
 */
export function spendIn(x: Exchange, wallet: Wallet): boolean | Promise<boolean> {
  const who = x.who;
  if (who !== undefined) {
    const key = who.key;
    const est = key.hasBudget ? estimate(x) : 0;
    let a: ReturnType<Wallet['admit']>;
    try {
      a = wallet.admit(key, x.model, est);
    } catch (e) {
      return refused(x, e);
    }
    if (a instanceof Promise)
      return a.then(
        (adm) => {
          x.adm = adm;
          return spendOn(x, key);
        },
        (e: unknown) => refused(x, e),
      );
    x.adm = a;
    return spendOn(x, key);
  }
  return spendOn(x, undefined);
}

/** Bodies up to this size are estimated from their bytes; larger ones (images as data URLs…) are parsed. */
const BYTE_ESTIMATE_MAX = 16 * 1024;

/**
 * The request's tokens, estimated for its budget admission: a small body that was only scanned counts its bytes / 4
 * plus its completion budget, without being parsed (usually a little more than `estimateTokens` says: the JSON's
 * own syntax counts too); a parsed or larger body goes through `estimateTokens`.
 */
function estimate(x: Exchange): number {
  const body = x.body;
  if (x.json === undefined && x.lazyJson && body !== undefined && body.length <= BYTE_ESTIMATE_MAX)
    return Math.ceil(body.length / 4) + x.completionTokens;
  const est = x.px.estimateTokens;
  return est !== undefined && x.hasJson() ? est(x.jsonOf()!) : 0;
}

/** A spend refusal answered (401 / 403 / 429); any other error thrown on. */
function refused(x: Exchange, e: unknown): false {
  const err = spendRefusal(e);
  if (err === undefined) throw e;
  x.status = err.status;
  sendError(x.res, err, x.rateHeaders());
  finish(x, undefined, err.code);
  return false;
}

/** After admission: the key's tags, and a stream's usage asked for. */
function spendOn(x: Exchange, key: VirtualKey | undefined): true {
  if (key !== undefined && key.tags.length) x.tags = x.tags ? [...key.tags, ...x.tags] : key.tags;
  const body = x.body;
  if (
    x.px.askUsage &&
    x.stream &&
    body !== undefined &&
    (x.operation === 'chat.completions' || x.operation === 'completions')
  ) {
    const asked = askForUsage(body, x.json, x.streamOptions);
    if (asked !== undefined) {
      x.askedUsage = true;
      x.body = asked.body;
      x.json = asked.json;
      if (asked.json === undefined) x.lazyJson = true;
    }
  }
  return true;
}

/** `x-lb-cost` from a whole body's usage (absent when the model has no price: unknown, never 0). */
export function costHeader(x: Exchange, h: OutgoingHttpHeaders, usage: Usage): void {
  x.usage = usage;
  const usd = x.px.wallet!.prices.costOf(usage, answeredModel(x), x.ctx?.endpoint);
  x.costUsd = usd;
  if (usd !== undefined) h[COST_HEADER] = costText(usd);
}

/** The model priced: the route's upstream model, else the one asked for. */
function answeredModel(x: Exchange): string | undefined {
  return x.ctx?.upstreamModel ?? x.model;
}

/** Settles the key's admission with the request's usage; the cost in USD when the model has a price. */
export function settleSpend(x: Exchange, wallet: Wallet, usage: Usage | undefined): number | undefined {
  // The usage `x-lb-cost` priced: its cost is not computed twice.
  const usd = usage !== undefined && usage === x.usage ? x.costUsd : undefined;
  return wallet.settle(x.who?.key, x.adm, usage, answeredModel(x), x.ctx?.endpoint, usd);
}
