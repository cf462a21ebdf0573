/* placeholder */ typedef int eng_placeholder_tool_dump;
