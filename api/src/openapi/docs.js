// Renders /openapi.json as operations grouped by tag. No framework, no network beyond this origin.
"use strict";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
}

function resolve(spec, item) {
  let seen = 0;
  while (item && item.$ref && seen++ < 10) {
    const parts = item.$ref.replace(/^#\//, "").split("/");
    item = parts.reduce((o, p) => (o ? o[p] : undefined), spec);
  }
  return item || {};
}

function schemaText(schema) {
  return schema ? JSON.stringify(schema, null, 2) : "";
}

function operation(spec, path, method, op) {
  const body = el("div", { class: "op" });
  if (op.description || op.summary) body.append(el("p", {}, op.description || op.summary));
  if (op.security && op.security.length) {
    body.append(el("p", {}, "Credentials: ", op.security.map((s) => Object.keys(s).join(" + ") || "none").join(" or ")));
  }
  const params = (op.parameters || []).map((p) => resolve(spec, p));
  if (params.length) {
    const rows = params.map((p) =>
      el("tr", {}, el("td", {}, el("code", {}, p.name)), el("td", {}, p.in), el("td", {}, p.required ? "required" : "optional"),
        el("td", {}, p.description || "")));
    body.append(el("h4", {}, "Parameters"),
      el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "In"), el("th", {}, ""), el("th", {}, "Meaning"))),
        el("tbody", {}, ...rows)));
  }
  if (op.requestBody) {
    const rb = resolve(spec, op.requestBody);
    for (const [type, media] of Object.entries(rb.content || {})) {
      body.append(el("h4", {}, "Body: ", el("code", {}, type)));
      if (media.schema) body.append(el("pre", {}, schemaText(media.schema)));
    }
  }
  const rows = Object.entries(op.responses || {}).map(([status, r]) => {
    const resp = resolve(spec, r);
    const types = Object.keys(resp.content || {}).join(", ");
    return el("tr", {}, el("td", {}, el("code", {}, status)), el("td", {}, resp.description || ""), el("td", {}, types));
  });
  body.append(el("h4", {}, "Answers"),
    el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Status"), el("th", {}, "Meaning"), el("th", {}, "Type"))),
      el("tbody", {}, ...rows)));
  const summary = el("summary", {}, el("span", { class: "method " + method }, method.toUpperCase()), " ", el("code", {}, path),
    op.summary ? " — " + op.summary : "");
  const details = el("details", { "data-search": (method + " " + path + " " + (op.summary || "") + " " + (op.description || "")).toLowerCase() },
    summary, body);
  return details;
}

async function main() {
  const root = document.getElementById("spec");
  let spec;
  try {
    const res = await fetch("/openapi.json");
    spec = await res.json();
  } catch (e) {
    root.textContent = "Could not load /openapi.json: " + e;
    return;
  }
  root.textContent = "";
  root.append(el("p", {}, spec.info.description || ""), el("p", {}, "OpenAPI " + spec.openapi + ", API version " + spec.info.version));
  const byTag = new Map((spec.tags || []).map((t) => [t.name, []]));
  for (const [path, item] of Object.entries(spec.paths || {})) {
    for (const method of ["get", "put", "post", "delete", "options", "head", "patch"]) {
      const op = item[method];
      if (!op) continue;
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push(operation(spec, path, method, op));
    }
  }
  for (const [tag, ops] of byTag) {
    if (!ops.length) continue;
    const info = (spec.tags || []).find((t) => t.name === tag);
    const section = el("section", { "aria-labelledby": "tag-" + tag }, el("h2", { id: "tag-" + tag }, tag));
    if (info && info.description) section.append(el("p", {}, info.description));
    section.append(...ops);
    root.append(section);
  }
  document.getElementById("filter").addEventListener("input", (ev) => {
    const words = ev.target.value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const d of root.querySelectorAll("details")) {
      const text = d.getAttribute("data-search");
      d.hidden = !words.every((w) => text.includes(w));
    }
  });
}

main();
