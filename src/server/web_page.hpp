// The chat page served at `/`: one self-contained HTML document (inline CSS and JavaScript, no
// external assets) that talks to /v1/chat/completions with streaming.
#pragma once
#include <string>

namespace edgelm::server {

const std::string& chat_page_html();

}  // namespace edgelm::server
