# Embeds the text file IN as `const std::string& colony::adapters::openapi_document()`.
file(READ ${IN} _text)
file(WRITE ${OUT}.tmp "// generated from ${IN}; do not edit\n#include <string>\nnamespace colony::adapters {\nconst std::string& openapi_document() {\n  static const std::string doc = R\"colony_doc(${_text})colony_doc\";\n  return doc;\n}\n}\n")
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different ${OUT}.tmp ${OUT})
