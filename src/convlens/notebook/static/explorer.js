// convlens.Explorer's front end (an anywidget module; convlens/notebook/widget.py is its Python).
//
// It shows the explorer's page (web/static: index.html's body, style.css, every script in js/)
// in a frame of its own, so the page's ids and styles never meet the notebook's. The page's
// scripts are the page's, unchanged but for one thing: before they run, the frame gets
// globalThis.convlensFetch, which web/static/js/api.js uses instead of fetch. It sends each
// request over the widget's channel ({type: "request", id, method, url, headers, body}, a
// binary body as a buffer) and resolves with a real Response built from the kernel's answer
// ({type: "response", id, status, content_type, body} or a buffer). Nothing is fetched from
// a server and no port is opened: the kernel answers in-process.
//
// The modules are linked in the frame: each becomes a blob: URL whose "./x.js" imports name
// the blob URLs of those modules, and page.js is loaded as a module script of the frame.

const ANSWER_WAIT_MS = 120000; // then the request fails with a sentence (a busy or dead kernel)
const READY_WAIT_MS = 60000; // the page's body[data-ready] before the start image is given

function frameDocument(page) {
  return (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    "<title>convlens explorer</title></head>" +
    `<body class="in-notebook">${page.body}</body></html>`
  );
}

/** The blob: URL of module `name`, its own imports linked first (the modules form a tree). */
function link(win, modules, name, urls, visiting = new Set()) {
  if (urls[name]) return urls[name];
  if (!(name in modules)) throw new Error(`the explorer has no module ${name}`);
  if (visiting.has(name)) throw new Error(`the explorer's modules import each other (${name})`);
  visiting.add(name);
  const source = modules[name].replace(/(from\s*|import\s*)(["'])\.\/([\w.-]+\.js)\2/g, (_m, lead, quote, dep) => {
    return `${lead}${quote}${link(win, modules, dep, urls, visiting)}${quote}`;
  });
  const blob = new win.Blob([source], { type: "text/javascript" });
  urls[name] = win.URL.createObjectURL(blob);
  return urls[name];
}

function errorBody(sentence, status) {
  return new Response(JSON.stringify({ error: sentence }), {
    status,
    headers: { "Content-Type": "application/json" },
  });
}

/** fetch, over the widget's channel: answered by the kernel, as a Response. */
function channelFetch(model, view) {
  const pending = new Map();
  let count = 0;
  const onMessage = (message, buffers) => {
    if (!message || message.type !== "response") return;
    const waiting = pending.get(message.id);
    if (!waiting) return; // another view's answer
    pending.delete(message.id);
    clearTimeout(waiting.timer);
    const body = buffers && buffers.length ? buffers[0] : message.body;
    const headers = message.content_type ? { "Content-Type": message.content_type } : {};
    waiting.resolve(new Response(body ?? "", { status: message.status, headers }));
  };
  const send = async (url, options = {}) => {
    const id = `${view}:${(count += 1)}`;
    const method = (options.method || "GET").toUpperCase();
    const headers = { ...(options.headers || {}) };
    let body = null;
    const buffers = [];
    if (typeof options.body === "string") {
      body = options.body;
    } else if (options.body) {
      buffers.push(await new Response(options.body).arrayBuffer()); // a Blob or File
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve(
          errorBody(
            "The kernel did not answer in 2 minutes: it may be busy running a cell, or stopped; " +
              "wait for the cell or run this one again.",
            504,
          ),
        );
      }, ANSWER_WAIT_MS);
      pending.set(id, { resolve, timer });
      model.send({ type: "request", id, method, url: String(url), headers, body }, undefined, buffers);
    });
  };
  const close = () => {
    for (const waiting of pending.values()) clearTimeout(waiting.timer);
    pending.clear();
  };
  return { send, onMessage, close };
}

/** Give the playground the start image: the page's own upload control, as a person would. */
function giveImage(win, doc, image) {
  const bytes = Uint8Array.from(atob(image.png), (c) => c.charCodeAt(0));
  const file = new win.File([bytes], image.name, { type: "image/png" });
  const files = new win.DataTransfer();
  files.items.add(file);
  const radio = doc.getElementById("source-upload");
  radio.checked = true;
  radio.dispatchEvent(new win.Event("change", { bubbles: true }));
  const input = doc.getElementById("upload");
  input.files = files.files;
  input.dispatchEvent(new win.Event("change", { bubbles: true }));
}

function whenReady(doc, then) {
  const started = Date.now();
  const check = () => {
    if (doc.body && doc.body.dataset.ready === "true") then();
    else if (Date.now() - started < READY_WAIT_MS) setTimeout(check, 50);
  };
  check();
}

function start(frame, page, image, transport) {
  const win = frame.contentWindow;
  const doc = frame.contentDocument;
  win.convlensFetch = transport.send;
  const style = doc.createElement("style");
  style.textContent = page.css;
  doc.head.append(style);
  const urls = {};
  const script = doc.createElement("script");
  script.type = "module";
  script.src = link(win, page.modules, page.entry, urls);
  doc.head.append(script);
  const fit = () => {
    frame.style.height = `${Math.ceil(doc.documentElement.scrollHeight)}px`;
  };
  const observer = new win.ResizeObserver(fit);
  observer.observe(doc.body);
  if (image) whenReady(doc, () => giveImage(win, doc, image));
  return () => {
    observer.disconnect();
    for (const url of Object.values(urls)) win.URL.revokeObjectURL(url);
  };
}

export default {
  render({ model, el }) {
    const view = Math.random().toString(36).slice(2);
    const transport = channelFetch(model, view);
    model.on("msg:custom", transport.onMessage);
    const frame = document.createElement("iframe");
    frame.className = "convlens-explorer";
    frame.title = "convlens explorer";
    frame.style.cssText = "display:block;width:100%;min-height:420px;border:0;background:#fff;";
    let stop = () => {};
    frame.addEventListener(
      "load",
      () => {
        stop = start(frame, model.get("_page"), model.get("_image"), transport);
      },
      { once: true },
    );
    frame.srcdoc = frameDocument(model.get("_page"));
    el.append(frame);
    return () => {
      model.off("msg:custom", transport.onMessage);
      transport.close();
      stop();
    };
  },
};
