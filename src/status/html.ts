// The one way a string reaches the status pages' HTML: hostnames, errors and drop reasons come
// from strangers (a PDS chooses its own error messages), so everything is escaped as text, and
// markup is built only from `Html` values made here.

/** A fragment of trusted markup. Anything else interpolated with `html` is escaped. */
export class Html {
  constructor(readonly markup: string) {}
  toString(): string {
    return this.markup;
  }
}

const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** Text as HTML text or attribute value (double- or single-quoted). */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c] as string);
}

type Interpolated = Html | string | number | null | undefined | Interpolated[];

function render(value: Interpolated): string {
  if (value === null || value === undefined) return "";
  if (value instanceof Html) return value.markup;
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value));
}

/** Tagged template: literal parts are markup, interpolated values are escaped unless `Html`. */
export function html(strings: TemplateStringsArray, ...values: Interpolated[]): Html {
  let out = strings[0] ?? "";
  for (let i = 0; i < values.length; i++) out += render(values[i]) + (strings[i + 1] ?? "");
  return new Html(out);
}
