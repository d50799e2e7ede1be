// bbedit console: a little progressive enhancement; every page works without it.
const confirmForms = () => {
  for (const form of document.querySelectorAll("form[data-confirm]")) {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  }
};

// refuse a file over the server's limit before uploading it
const checkUploads = () => {
  for (const input of document.querySelectorAll("input[type=file][data-max-bytes]")) {
    input.addEventListener("change", () => {
      const max = Number(input.dataset.maxBytes);
      const file = input.files && input.files[0];
      input.setCustomValidity(file && file.size > max ? `The file is larger than the limit of ${Math.round(max / 1024)} KiB.` : "");
      input.reportValidity();
    });
  }
};

// calibration: more question rows
const addRows = () => {
  const button = document.getElementById("add-row");
  const table = document.getElementById("label-rows");
  if (!button || !table) return;
  button.hidden = false;
  button.addEventListener("click", () => {
    const rows = table.tBodies[0].rows;
    const max = Number(table.dataset.maxRows);
    if (!rows.length || rows.length >= max) return;
    const last = rows[rows.length - 1];
    const next = Math.max(...[...table.querySelectorAll("input[id^=q]")].map((i) => Number(i.id.slice(1)))) + 1;
    const row = last.cloneNode(true);
    for (const el of row.querySelectorAll("[id], [for], [name], [aria-describedby]")) {
      for (const attr of ["id", "for", "name"]) {
        const v = el.getAttribute(attr);
        if (v) el.setAttribute(attr, v.replace(/\d+$/, String(next)));
      }
      el.removeAttribute("aria-invalid");
      el.removeAttribute("aria-describedby");
      if (el.tagName === "INPUT") el.value = "";
      if (el.tagName === "SELECT") el.selectedIndex = el.options.length - 1;
    }
    for (const p of row.querySelectorAll("p.error")) p.remove();
    for (const label of row.querySelectorAll("label")) label.textContent = label.textContent.replace(/\d+/, String(rows.length + 1));
    table.tBodies[0].appendChild(row);
    row.querySelector("input").focus();
  });
};

confirmForms();
checkUploads();
addRows();
