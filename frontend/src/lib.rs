//! The browser entry point: hydrates the interactive islands of the server-rendered pages.

use leptos::wasm_bindgen::JsValue;

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_islands();
    // Islands are found through the app crate: make sure it is linked.
    let _ = app::App;
    app::components::label_table_cells();
    app::components::carry_range();
    app::zone::tell_server();
    // Lets the browser tests (and curious users) know the page is now interactive.
    if let Some(window) = leptos::web_sys::window() {
        let _ = leptos::web_sys::js_sys::Reflect::set(
            &window,
            &JsValue::from_str("__opsdeck_hydrated"),
            &JsValue::TRUE,
        );
    }
}
