import { ProviderError } from '../errors.js';

/** Anthropic content block (request side). */
type Block = Record<string, unknown>;
interface Turn {
  role: 'user' | 'assistant';
  content: Block[];
}

const DATA_URL = /^data:([^;,]+)(?:;[^,]*)?;base64,/;

function bad(message: string): ProviderError {
  return new ProviderError(message, { status: 400, code: 'invalid_request', provider: 'anthropic' });
}

/** Text blocks from OpenAI content (a string or an array of parts). */
function textBlocks(content: unknown, where: string): Block[] {
  if (content === null || content === undefined) return [];
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  if (!Array.isArray(content))
    throw bad(`${where}.content: expected a string or an array, received ${typeof content}`);
  const out: Block[] = [];
  for (const p of content) {
    if (p?.type === 'text' && typeof p.text === 'string' && p.text !== '')
      out.push({ type: 'text', text: p.text });
    else if (p?.type === 'refusal' && typeof p.refusal === 'string')
      out.push({ type: 'text', text: p.refusal });
  }
  return out;
}

function imageBlock(url: string): Block {
  const m = DATA_URL.exec(url);
  if (m) return { type: 'image', source: { type: 'base64', media_type: m[1], data: url.slice(m[0].length) } };
  return { type: 'image', source: { type: 'url', url } };
}

/** User content: text, images (`image_url`, data URLs → base64, others → url) and PDF/text files (`file`). */
function userBlocks(content: unknown, where: string): Block[] {
  if (typeof content === 'string' || content === null || content === undefined)
    return textBlocks(content, where);
  if (!Array.isArray(content))
    throw bad(`${where}.content: expected a string or an array, received ${typeof content}`);
  const out: Block[] = [];
  content.forEach((p: any, i: number) => {
    switch (p?.type) {
      case 'text':
        if (typeof p.text === 'string' && p.text !== '') out.push({ type: 'text', text: p.text });
        break;
      case 'image_url': {
        const url = typeof p.image_url === 'string' ? p.image_url : p.image_url?.url;
        if (typeof url !== 'string') throw bad(`${where}.content[${i}].image_url.url: expected a URL`);
        out.push(imageBlock(url));
        break;
      }
      case 'file': {
        const data = p.file?.file_data;
        const m = typeof data === 'string' ? DATA_URL.exec(data) : null;
        if (!m)
          throw bad(
            `${where}.content[${i}]: only inline files (file.file_data as a base64 data URL) can be sent to Anthropic`,
          );
        out.push({
          type: 'document',
          source: { type: 'base64', media_type: m[1], data: data.slice(m[0].length) },
        });
        break;
      }
      default:
        throw bad(`${where}.content[${i}].type ${JSON.stringify(p?.type)} is not supported by Anthropic`);
    }
  });
  return out;
}

function parseArguments(args: unknown): unknown {
  if (args && typeof args === 'object') return args;
  if (typeof args !== 'string' || args.trim() === '') return {};
  try {
    const v = JSON.parse(args);
    return v && typeof v === 'object' && !Array.isArray(v) ? v : { value: v };
  } catch {
    return { arguments: args };
  }
}

function toolResult(id: unknown, content: unknown, where: string): Block {
  if (typeof id !== 'string')
    throw bad(`${where}.tool_call_id: expected a string, received ${JSON.stringify(id)}`);
  const blocks = typeof content === 'string' ? undefined : textBlocks(content, where);
  return {
    type: 'tool_result',
    tool_use_id: id,
    content: blocks === undefined ? content : blocks.length === 1 ? blocks[0].text : blocks,
  };
}

/**
 * The tool a `response_format` becomes: Anthropic has no JSON mode on every model, but a forced tool call's input is
 * always a JSON object matching the tool's schema. The answer's call to it is turned back into message content.
 */
export const JSON_TOOL = 'lb_json_response';

/** The JSON tool for a `response_format`, or undefined for text (or none). */
function jsonTool(format: unknown): Block | undefined {
  const f = format as {
    type?: unknown;
    json_schema?: { schema?: unknown; name?: unknown; description?: unknown };
  };
  if (f?.type === 'json_object') {
    return {
      name: JSON_TOOL,
      description: 'Answer with a JSON object.',
      input_schema: { type: 'object', additionalProperties: true },
    };
  }
  if (f?.type !== 'json_schema') return undefined;
  const s = f.json_schema;
  const schema = s?.schema;
  if (!schema || typeof schema !== 'object' || Array.isArray(schema))
    throw bad('response_format.json_schema.schema: expected a JSON Schema object');
  const about = typeof s.description === 'string' ? ` ${s.description}` : '';
  const name = typeof s.name === 'string' ? ` (${s.name})` : '';
  return {
    name: JSON_TOOL,
    description: `Answer with a JSON object matching the schema${name}.${about}`,
    input_schema: schema,
  };
}

function toolChoice(choice: unknown, parallel: unknown): Block | undefined {
  let out: Block | undefined;
  if (choice === 'auto') out = { type: 'auto' };
  else if (choice === 'none') return { type: 'none' };
  else if (choice === 'required') out = { type: 'any' };
  else if (choice && typeof choice === 'object') {
    const name = (choice as any).function?.name ?? (choice as any).name;
    if (typeof name === 'string') out = { type: 'tool', name };
  }
  if (parallel === false) (out ??= { type: 'auto' }).disable_parallel_tool_use = true;
  return out;
}

/** Settings the translation needs besides the body. */
export interface AnthropicRequestOptions {
  model: string | undefined;
  maxTokens: number;
}

/**
 * OpenAI chat completion request → Anthropic Messages request.
 * system/developer → `system`; user (text, images, files), assistant (text, tool_calls → tool_use), tool → user
 * `tool_result`; consecutive same-role turns merged; tools/tool_choice/parallel_tool_calls; stop → stop_sequences;
 * max_completion_tokens ?? max_tokens ?? default; temperature (clamped to Anthropic's 0..1), top_p; user → metadata;
 * response_format json_object/json_schema → a forced call to {@link JSON_TOOL}, whose input the answer turns back
 * into message content.
 */
export function toAnthropicRequest(
  json: Record<string, any>,
  opts: AnthropicRequestOptions,
): Record<string, unknown> {
  const messages = json.messages;
  if (!Array.isArray(messages)) throw bad(`messages: expected an array, received ${typeof messages}`);
  const system: Block[] = [];
  const turns: Turn[] = [];
  const push = (role: Turn['role'], blocks: Block[]) => {
    if (blocks.length === 0) return;
    const last = turns[turns.length - 1];
    if (last && last.role === role) last.content.push(...blocks);
    else turns.push({ role, content: blocks });
  };
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i];
    const where = `messages[${i}]`;
    switch (m?.role) {
      case 'system':
      case 'developer':
        system.push(...textBlocks(m.content, where));
        break;
      case 'user':
        push('user', userBlocks(m.content, where));
        break;
      case 'assistant': {
        const blocks = textBlocks(m.content, where);
        if (Array.isArray(m.tool_calls)) {
          for (const c of m.tool_calls) {
            blocks.push({
              type: 'tool_use',
              id: c.id,
              name: c.function?.name,
              input: parseArguments(c.function?.arguments),
            });
          }
        } else if (m.function_call) {
          blocks.push({
            type: 'tool_use',
            id: m.function_call.name,
            name: m.function_call.name,
            input: parseArguments(m.function_call.arguments),
          });
        }
        push('assistant', blocks);
        break;
      }
      case 'tool':
        push('user', [toolResult(m.tool_call_id, m.content, where)]);
        break;
      case 'function':
        push('user', [toolResult(m.name, m.content, where)]);
        break;
      default:
        throw bad(
          `${where}.role: expected system, developer, user, assistant or tool, received ${JSON.stringify(m?.role)}`,
        );
    }
  }
  const out: Record<string, unknown> = {
    model: opts.model ?? json.model,
    messages: turns.map((t) =>
      t.content.length === 1 && t.content[0].type === 'text'
        ? { role: t.role, content: t.content[0].text }
        : t,
    ),
    max_tokens: json.max_completion_tokens ?? json.max_tokens ?? opts.maxTokens,
  };
  if (system.length) out.system = system.length === 1 ? system[0].text : system;
  if (typeof json.temperature === 'number') out.temperature = Math.min(1, Math.max(0, json.temperature));
  if (typeof json.top_p === 'number') out.top_p = json.top_p;
  if (typeof json.top_k === 'number') out.top_k = json.top_k;
  const stop = typeof json.stop === 'string' ? [json.stop] : Array.isArray(json.stop) ? json.stop : undefined;
  if (stop?.length) out.stop_sequences = stop;
  const tools = Array.isArray(json.tools)
    ? json.tools.filter((t: any) => t?.type === 'function' && t.function).map((t: any) => t.function)
    : Array.isArray(json.functions)
      ? json.functions
      : undefined;
  let asked: Block[] | undefined = tools?.length
    ? tools.map((f: any) => {
        const tool: Block = {
          name: f.name,
          input_schema: f.parameters ?? { type: 'object', properties: {} },
        };
        if (f.description) tool.description = f.description;
        return tool;
      })
    : undefined;
  let choice = asked
    ? toolChoice(json.tool_choice ?? json.function_call, json.parallel_tool_calls)
    : undefined;
  const answer = jsonTool(json.response_format);
  if (answer) {
    // The answer comes as a call to the JSON tool. Forced when the caller has no tools (or said `none` to them);
    // with tools the caller left to the model, some tool must be called (theirs, or the answer); a tool of theirs
    // the caller forced stays forced; extended thinking allows only `auto`.
    if (choice?.type === 'none') {
      asked = undefined;
      choice = undefined;
    }
    if ((json.thinking as { type?: unknown } | undefined)?.type === 'enabled') choice = { type: 'auto' };
    else if (!asked) choice = { type: 'tool', name: JSON_TOOL };
    else if (choice === undefined || choice.type === 'auto') choice = { ...choice, type: 'any' };
    asked = asked ? [...asked, answer] : [answer];
  }
  if (asked?.length) {
    out.tools = asked;
    if (choice) out.tool_choice = choice;
  }
  if (typeof json.user === 'string') out.metadata = { user_id: json.user };
  if (json.thinking && typeof json.thinking === 'object') out.thinking = json.thinking;
  if (json.stream === true) out.stream = true;
  return out;
}
