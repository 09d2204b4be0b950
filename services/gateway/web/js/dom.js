// Elements built from data with textContent only: nothing the API returns is parsed as HTML.

export function el(tag, props = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (name === "class") element.className = value;
    else if (name === "text") element.textContent = value;
    else if (name in element) element[name] = value;
    else element.setAttribute(name, value);
  }
  element.append(...children.filter((child) => child !== null && child !== undefined));
  return element;
}

export function percent(probability) {
  return `${(probability * 100).toFixed(1)} %`;
}

export function byId(id) {
  return document.getElementById(id);
}
